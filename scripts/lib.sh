# Sourced by the install scripts (POSIX sh).

# missing_packages prints those of the named Debian packages that are not
# fully installed: dpkg-query says "install ok installed" only for a package
# that is completely set up.
missing_packages() {
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
			printf ' %s' "$p"
		fi
	done
}

# install_packages [--no-services] PACKAGE... installs those of the packages
# that are missing, from Debian's apt without their recommends (no services
# or GUI pulled in that nothing asked for), and refuses, naming the calling
# script, when that needs root it does not have. With --no-services a
# policy-rc.d keeps the maintainer scripts from starting the daemons the
# packages ship (the tests start their own, with private roots and
# sockets); it is there only while apt runs.
install_packages() {
	_services=1
	if [ "${1:-}" = --no-services ]; then
		_services=0
		shift
	fi
	_need=$(missing_packages "$@")
	if [ -z "$_need" ]; then
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "$(basename "$0"): must run as root to install:$_need" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	_policy=/usr/sbin/policy-rc.d
	_created_policy=0
	if [ "$_services" = 0 ] && [ ! -e "$_policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$_policy"
		chmod +x "$_policy"
		_created_policy=1
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	apt-get install -y -qq --no-install-recommends $_need >/dev/null
	if [ "$_created_policy" = 1 ]; then
		rm -f "$_policy"
		trap - EXIT
	fi
}
