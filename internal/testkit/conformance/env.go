package conformance

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/tcxgo/tcx"
)

// Env is one backend prepared for one scenario: a tcx.Backend plus everything
// else the kernel selftests touch (a loopback device, veth pairs, classic tc
// qdiscs and cls_bpf filters, probe programs and loopback traffic).
//
// Every Env starts from a clean slate (the kernel Env owns a fresh network
// namespace), so scenarios never see each other's leftovers.
type Env interface {
	// Name is "userspace" or "kernel".
	Name() string
	Backend() tcx.Backend
	// Loopback is the ifindex of lo, which is up.
	Loopback() int

	// Probe loads a new program that records "probe n ran" every time it
	// runs and then returns verdict. Each call loads a distinct program (a new
	// program ID), even for the same n. n is in [0, probes.MaxProbe].
	Probe(n int, verdict int32) (tcx.Program, error)
	// Seen reports whether probe n ran since the last ResetSeen.
	Seen(n int) (bool, error)
	ResetSeen() error
	// Ping sends traffic to 127.0.0.1 and waits until it came back, so that it
	// crossed lo's egress and then its ingress hook (the selftests' ping_cmd).
	Ping() error

	// AddVeth creates a veth pair and brings both ends up.
	AddVeth(a, b string) (ia, ib int, err error)
	// DeleteDevice removes a device (for a veth end: the pair).
	DeleteDevice(ifindex int) error

	// AddQdisc adds a clsact or ingress qdisc to a device.
	AddQdisc(ifindex int, kind Qdisc) error
	// DeleteQdisc removes it again.
	DeleteQdisc(ifindex int, kind Qdisc) error
	// AddClassicFilter adds prog as a direct-action cls_bpf filter (priority 1,
	// handle 1, like libbpf's bpf_tc_attach in the selftests) on the hook of
	// the device's clsact or ingress qdisc.
	AddClassicFilter(ifindex int, dir tcx.Direction, prog tcx.Program) error
	// DeleteClassicFilter removes that filter.
	DeleteClassicFilter(ifindex int, dir tcx.Direction) error

	// ProgramAlive reports whether a program with that ID exists (whether
	// BPF_PROG_GET_FD_BY_ID finds it).
	ProgramAlive(id uint32) (bool, error)

	// PinPath is a path in the backend's bpffs where name may be pinned.
	PinPath(name string) string

	// Close releases everything the Env created.
	Close() error
}

// alive turns a lookup by ID into ProgramAlive's answer, closing the
// handle it opened.
func alive[H interface{ Close() error }](h H, err error) (bool, error) {
	if errors.Is(err, syscall.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, h.Close()
}

// Qdisc is a classic tc qdisc that can share a hook with tcx.
type Qdisc uint8

const (
	Clsact  Qdisc = iota // "tc qdisc add dev X clsact": ingress and egress
	Ingress              // "tc qdisc add dev X ingress": ingress only
)

func (q Qdisc) String() string {
	switch q {
	case Clsact:
		return "clsact"
	case Ingress:
		return "ingress"
	}
	return fmt.Sprintf("Qdisc(%d)", uint8(q))
}

// Factory creates a fresh Env; each scenario case gets its own.
type Factory func() (Env, error)
