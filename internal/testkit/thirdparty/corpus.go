package thirdparty

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/engine"
)

// Dir is the kernel selftests' part of the corpus, relative to this
// package; Dirs are all its parts: the selftests (libbpf-style, many built
// against vmlinux.h) and cilium/ebpf's tcx example (bpf2go-generated).
const Dir = "../../../testdata/thirdparty/selftests/progs"

// Dirs are the directories of the corpus.
var Dirs = []string{Dir, "../../../testdata/thirdparty/cilium-examples/tcx"}

// RejectedDir holds selftests whose programs the kernel's verifier refuses
// (most of them, on purpose) for what the engine's load-time checks cover.
const RejectedDir = "../../../testdata/thirdparty/selftests/rejected"

// tcSections are the section names that only an object's test script knows
// to be tc programs (it attaches them with "tc filter ... bpf obj O sec S"),
// so cilium/ebpf's ELF reader leaves their type unspecified.
var tcSections = map[string]func(section string) bool{
	"test_tc_tunnel.o": func(s string) bool { return strings.HasPrefix(s, "encap_") || s == "decap" },
	"test_tc_edt.o":    func(s string) bool { return s == "cls_test" },
	"test_xdp_meta.o":  func(s string) bool { return s == "t" },
}

// Objects lists the objects in dir (Dir or RejectedDir), sorted.
func Objects(dir string) ([]string, error) {
	objs, err := filepath.Glob(filepath.Join(dir, "*.o"))
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no objects in %s", dir)
	}
	slices.Sort(objs)
	return objs, nil
}

// Specs loads an object: the full spec for the engine (which leaves out
// what its tc programs do not need) and a copy with only the tc and
// syscall programs for the kernel (the object's other programs need attach
// targets and kernel features that are not under test here; a syscall
// program is what the object's selftest runs to set up what its tc
// programs use).
func Specs(path string) (full, tcOnly *ebpf.CollectionSpec, err error) {
	full, err = engine.LoadCollectionSpec(path)
	if err != nil {
		return nil, nil, err
	}
	if isTC := tcSections[filepath.Base(path)]; isTC != nil {
		for _, p := range full.Programs {
			if p.Type == ebpf.UnspecifiedProgram && isTC(p.SectionName) {
				p.Type = ebpf.SchedCLS
			}
		}
	}
	tcOnly = full.Copy()
	for name, p := range tcOnly.Programs {
		if p.Type != ebpf.SchedCLS && p.Type != ebpf.Syscall {
			delete(tcOnly.Programs, name)
		}
	}
	return full, tcOnly, nil
}

// Refusal documents why the engine refuses an object the kernel loads.
type Refusal struct {
	// Match is a substring of the engine's load error.
	Match string
	// Kind is RefusedKernelInternal, the one kind issue 9 accepts
	// (TestThirdParty fails on any other).
	Kind string
}

// RefusedKernelInternal is the kind of Refusal of a CO-RE field relocation
// on a kernel-internal type (struct sk_buff, sock, task_struct, ...):
// memory the engine has no model of, reached through kfuncs or BTF
// pointers. The kinds for kfuncs, map types and helpers not yet modelled
// are gone with the last of them.
const RefusedKernelInternal = "kernel-internal type (CO-RE)"

// Refusals are the documented refusals, by object. An object the engine
// refuses that is not listed, or refuses for another reason, fails the
// test; a listed object that loads is reported, so the list can shrink.
var Refusals = map[string]Refusal{
	"cgroup_ancestor.o":           {"struct sock.sk_protocol", RefusedKernelInternal},
	"decap_sanity.o":              {"struct sk_buff.", RefusedKernelInternal},
	"test_btf_skc_cls_ingress.o":  {"struct request_sock.", RefusedKernelInternal},
	"test_skb_helpers.o":          {"struct task_struct.", RefusedKernelInternal},
	"test_tcp_custom_syncookie.o": {"struct bpf_tcp_req_attrs.", RefusedKernelInternal},
	"xdp_synproxy_kern.o":         {"struct nf_conn.", RefusedKernelInternal},
}

// Unmatchable are programs ("object/program") whose output no second
// implementation can reproduce: they load on both sides but their packets
// are not compared.
var Unmatchable = map[string]string{
	"timer_lockup.o/timer1_prog":                 "arms a 1 ns timer whose callback writes .bss: the kernel fires it in a softirq, so whether the comparison reads the map before or after is a race (the engine fires it at the end of the run; bpf_timer's results are compared by kerneldiff's timer probe)",
	"timer_lockup.o/timer2_prog":                 "as timer1_prog",
	"test_time_tai.o/time_tai":                   "writes bpf_ktime_get_tai_ns() into cb[0]: two clocks never read alike",
	"verifier_stack_ptr.o/array_map_using_bpf_b": "stores the low byte of r10, a kernel stack address, in a map",
	// The rejected selftests' accepted programs that store a packet
	// pointer (a kernel address) into the packet.
	"verifier_direct_packet_access.o/direct_packet_access_test4_write":       "writes the low byte of skb->data into the packet",
	"verifier_direct_packet_access.o/packet_access_test17_pruning_alignment": "writes 4 bytes of a packet pointer into the packet",
	"verifier_direct_packet_access.o/test18_imm_pkt_ptr_1":                   "writes the low byte of skb->data into the packet",
	"verifier_direct_packet_access.o/test19_imm_pkt_ptr_2":                   "writes the low byte of a packet pointer into the packet",
	"verifier_direct_packet_access.o/test22_x_pkt_ptr_3":                     "writes at an offset computed from a packet pointer's high bits",
}
