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
