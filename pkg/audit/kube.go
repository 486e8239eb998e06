package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"sigs.k8s.io/yaml"

	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
)

// kubeObject is a Pod, or a workload whose pod is spec.template
// (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job) or
// spec.jobTemplate.spec.template (CronJob).
type kubeObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	// Items holds the objects of a List (kubectl get pods -o yaml).
	Items []json.RawMessage `json:"items"`
	Spec  *struct {
		kubePodSpec
		Template *struct {
			Spec *kubePodSpec `json:"spec"`
		} `json:"template"`
		JobTemplate *struct {
			Spec *struct {
				Template *struct {
					Spec *kubePodSpec `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		} `json:"jobTemplate"`
	} `json:"spec"`
}

type kubePodSpec struct {
	HostPID         bool             `json:"hostPID"`
	HostIPC         bool             `json:"hostIPC"`
	HostNetwork     bool             `json:"hostNetwork"`
	HostUsers       *bool            `json:"hostUsers"`
	SecurityContext *kubeSecurityCtx `json:"securityContext"`
	Containers      []kubeContainer  `json:"containers"`
	InitContainers  []kubeContainer  `json:"initContainers"`
	Ephemeral       []kubeContainer  `json:"ephemeralContainers"`
	Volumes         []kubeVolume     `json:"volumes"`
}

type kubeSecurityCtx struct {
	Privileged               *bool  `json:"privileged"`
	AllowPrivilegeEscalation *bool  `json:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool  `json:"readOnlyRootFilesystem"`
	RunAsUser                *int64 `json:"runAsUser"`
	RunAsNonRoot             *bool  `json:"runAsNonRoot"`
	ProcMount                string `json:"procMount"`
	Capabilities             *struct {
		Add  []string `json:"add"`
		Drop []string `json:"drop"`
	} `json:"capabilities"`
	SeccompProfile *struct {
		Type             string `json:"type"`
		LocalhostProfile string `json:"localhostProfile"`
	} `json:"seccompProfile"`
}

type kubeContainer struct {
	Name            string           `json:"name"`
	Image           string           `json:"image"`
	SecurityContext *kubeSecurityCtx `json:"securityContext"`
	VolumeMounts    []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		ReadOnly  bool   `json:"readOnly"`
	} `json:"volumeMounts"`
	Resources struct {
		Limits map[string]any `json:"limits"`
	} `json:"resources"`
}

type kubeVolume struct {
	Name     string `json:"name"`
	HostPath *struct {
		Path string `json:"path"`
	} `json:"hostPath"`
}

// docSep splits a multi-document YAML stream.
var docSep = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// ParseKubernetes reads Kubernetes YAML (or JSON): every document that is
// a Pod or holds a pod template gives one subject per container. Fields
// Kubernetes leaves to the runtime take containerd's defaults (Docker's
// capabilities, no seccomp filter unless the kubelet's seccompDefault is
// on, which the file cannot show).
func ParseKubernetes(name string, data []byte) ([]Subject, error) {
	var out []Subject
	for i, doc := range docSep.Split(string(data), -1) {
		if len(bytes.TrimSpace([]byte(doc))) == 0 {
			continue
		}
		docName := name
		if i > 0 {
			docName = fmt.Sprintf("%s (document %d)", name, i+1)
		}
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return nil, &InputError{File: docName, Msg: "malformed YAML", Err: err}
		}
		if string(bytes.TrimSpace(js)) == "null" {
			continue // only comments
		}
		subs, err := kubeObjects(docName, "", js, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, subs...)
	}
	if len(out) == 0 {
		return nil, &InputError{File: name, Msg: "no Kubernetes object with containers"}
	}
	return out, nil
}

// kubeObjects reads one object, or each item of a List; field is the path
// of the object inside the document ("items[2]").
func kubeObjects(file, field string, js []byte, depth int) ([]Subject, error) {
	var o kubeObject
	if err := decodeJSON(file, js, &o); err != nil {
		return nil, err
	}
	at := func(f string) string {
		if field == "" {
			return f
		}
		return field + "." + f
	}
	if o.Kind == "" {
		return nil, &InputError{File: file, Field: at("kind"), Msg: "missing: not a Kubernetes object"}
	}
	if strings.HasSuffix(o.Kind, "List") {
		if depth > 0 {
			return nil, &InputError{File: file, Field: at("kind"), Msg: "a List inside a List"}
		}
		var out []Subject
		for i, item := range o.Items {
			subs, err := kubeObjects(file, at(fmt.Sprintf("items[%d]", i)), item, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, subs...)
		}
		return out, nil
	}
	pod, podField := o.podSpec()
	if pod == nil {
		return nil, &InputError{File: file, Field: at(podField), Msg: fmt.Sprintf("missing: a %s without a pod spec", o.Kind)}
	}
	return kubeSubjects(file, at(podField), o.Metadata.Name, pod)
}

func (o *kubeObject) podSpec() (*kubePodSpec, string) {
	switch {
	case o.Spec == nil:
		return nil, "spec"
	case o.Kind == "Pod":
		return &o.Spec.kubePodSpec, "spec"
	case o.Spec.Template != nil:
		return o.Spec.Template.Spec, "spec.template.spec"
	case o.Spec.JobTemplate != nil && o.Spec.JobTemplate.Spec != nil && o.Spec.JobTemplate.Spec.Template != nil:
		return o.Spec.JobTemplate.Spec.Template.Spec, "spec.jobTemplate.spec.template.spec"
	}
	return nil, "spec.template"
}

func kubeSubjects(file, field, objName string, pod *kubePodSpec) ([]Subject, error) {
	all := slices.Concat(pod.InitContainers, pod.Containers, pod.Ephemeral)
	if len(all) == 0 {
		return nil, &InputError{File: file, Field: field + ".containers", Msg: "empty: no container to audit"}
	}
	vols := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			vols[v.Name] = v.HostPath.Path
		}
	}
	var out []Subject
	for _, c := range all {
		name := c.Name
		if objName != "" {
			name = objName + "/" + c.Name
		}
		out = append(out, kubeSubject(name, pod, &c, vols))
	}
	return out, nil
}

func kubeSubject(name string, pod *kubePodSpec, c *kubeContainer, hostPaths map[string]string) Subject {
	sc := c.SecurityContext
	if sc == nil {
		sc = &kubeSecurityCtx{}
	}
	psc := pod.SecurityContext
	if psc == nil {
		psc = &kubeSecurityCtx{}
	}
	s := policy.Base()
	s.Root.Readonly = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
	privileged := sc.Privileged != nil && *sc.Privileged
	sub := Subject{Name: name, Format: FormatKubernetes, Spec: s, Privileged: privileged, PidsUnknown: true}

	set := map[string]bool{}
	for _, n := range policy.DockerDefaultCaps {
		set[n] = true
	}
	if sc.Capabilities != nil {
		for _, n := range sc.Capabilities.Drop {
			if n == "ALL" || n == "all" {
				clear(set)
			}
			delete(set, oci.CapabilityName(n))
		}
		for _, n := range sc.Capabilities.Add {
			if n == "ALL" || n == "all" {
				for _, k := range oci.KnownCapabilities() {
					set[k] = true
				}
			}
			if cn := oci.CapabilityName(n); oci.IsKnownCapability(cn) {
				set[cn] = true
			}
		}
	}
	if privileged {
		for _, k := range oci.KnownCapabilities() {
			set[k] = true
		}
	}
	capList := sortedSet(set)
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: capList, Effective: capList, Permitted: capList}

	// The container's seccompProfile wins over the pod's; none at all is
	// Unconfined unless the kubelet runs with seccompDefault.
	sp := sc.SeccompProfile
	if sp == nil {
		sp = psc.SeccompProfile
	}
	s.Linux.Seccomp = nil
	if sp != nil && !privileged {
		switch sp.Type {
		case "RuntimeDefault":
			s.Linux.Seccomp = profiles.Default()
		case "Localhost":
			// A node-local profile the file does not carry: judged as a
			// filter, its contents are not audited.
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
		}
	}
	// allowPrivilegeEscalation defaults to true (no no_new_privs).
	s.Process.NoNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation && !privileged
	if privileged || sc.ProcMount == "Unmasked" {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	}
	if privileged {
		for j := range s.Mounts {
			if s.Mounts[j].Type == "sysfs" || s.Mounts[j].Type == "cgroup" {
				s.Mounts[j].Options = slices.DeleteFunc(s.Mounts[j].Options, func(o string) bool { return o == "ro" })
			}
		}
	}

	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace}}
	if !pod.HostPID {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	if !pod.HostIPC {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	if !pod.HostNetwork {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace}, specs.LinuxNamespace{Type: specs.UTSNamespace})
	}
	if pod.HostUsers != nil && !*pod.HostUsers {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	}

	for _, vm := range c.VolumeMounts {
		src, ok := hostPaths[vm.Name]
		if !ok {
			continue
		}
		opts := []string{"rbind"}
		if vm.ReadOnly {
			opts = append(opts, "ro")
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: vm.MountPath, Type: "bind", Source: src, Options: opts})
	}

	res := &specs.LinuxResources{}
	if privileged {
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	if _, ok := c.Resources.Limits["memory"]; ok {
		lim := int64(1)
		res.Memory = &specs.LinuxMemory{Limit: &lim}
	}
	s.Linux.Resources = res

	uid := sc.RunAsUser
	if uid == nil {
		uid = psc.RunAsUser
	}
	nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
	switch {
	case uid != nil && *uid != 0:
		s.Process.User = specs.User{UID: uint32(*uid)}
	case uid != nil:
		s.Process.User = specs.User{UID: 0}
	case nonRoot:
		s.Process.User = specs.User{UID: 65534}
	default:
		s.Process.User = specs.User{UID: 0}
		sub.UserUnknown = true
	}
	return sub
}
