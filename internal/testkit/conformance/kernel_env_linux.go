package conformance

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest/probes"
	"github.com/tcxgo/tcx/kernel"
)

// kernelEnv runs a scenario on the real kernel in a network namespace of its
// own. Probe programs are the asm programs of package probes: seen[n] = 1 in
// an array map all of them share, then their verdict.
type kernelEnv struct {
	ns    *kernel.NetNS
	b     *kernel.Backend
	seen  *kernel.Map
	lo    int
	colls []*kernel.Collection
	used  map[int]bool // probe numbers loaded, to reset
}

// pingTimeout bounds one loopback round trip; the scenarios never drop.
const pingTimeout = 2 * time.Second

// NewKernelEnv creates a kernel Env in a fresh network namespace.
func NewKernelEnv() (Env, error) {
	ns, err := kernel.NewNetNS()
	if err != nil {
		return nil, fmt.Errorf("kernel env: %w", err)
	}
	e := &kernelEnv{ns: ns, used: map[int]bool{}}
	if err := e.init(); err != nil {
		e.Close()
		return nil, fmt.Errorf("kernel env: %w", err)
	}
	return e, nil
}

func (e *kernelEnv) init() error {
	var err error
	if e.b, err = kernel.New(e.ns, kernel.Options{}); err != nil {
		return err
	}
	if e.lo, err = e.ns.Ifindex("lo"); err != nil {
		return err
	}
	e.seen, err = e.b.NewMap(probes.SeenSpec())
	return err
}

func (e *kernelEnv) Name() string         { return "kernel" }
func (e *kernelEnv) Backend() tcx.Backend { return e.b }
func (e *kernelEnv) Loopback() int        { return e.lo }

func (e *kernelEnv) Probe(n int, verdict int32) (tcx.Program, error) {
	if n < 0 || n > probes.MaxProbe {
		return nil, fmt.Errorf("probe %d: %w (out of range)", n, unix.EINVAL)
	}
	p := probes.Probe{N: n, Verdict: verdict}
	c, err := e.b.LoadCollection(probes.Spec(p), kernel.LoadOptions{Maps: map[string]*kernel.Map{probes.SeenMap: e.seen}})
	if err != nil {
		return nil, err
	}
	e.colls = append(e.colls, c)
	e.used[n] = true
	return c.Programs[p.Name()], nil
}

func (e *kernelEnv) Seen(n int) (bool, error) {
	var v uint32
	if err := e.seen.Lookup(uint32(n), &v); err != nil {
		return false, err
	}
	return v != 0, nil
}

func (e *kernelEnv) ResetSeen() error {
	for n := range e.used {
		if err := e.seen.Update(uint32(n), uint32(0)); err != nil {
			return err
		}
	}
	return nil
}

func (e *kernelEnv) Ping() error { return e.ns.Ping(pingTimeout) }

func (e *kernelEnv) AddVeth(a, b string) (int, int, error) { return e.ns.AddVethPair(a, b) }
func (e *kernelEnv) DeleteDevice(ifindex int) error        { return e.ns.DeleteDevice(ifindex) }

func qdiscKind(q Qdisc) string {
	if q == Ingress {
		return kernel.QdiscIngress
	}
	return kernel.QdiscClsact
}

func (e *kernelEnv) AddQdisc(ifindex int, q Qdisc) error {
	return e.ns.AddQdisc(ifindex, qdiscKind(q))
}

func (e *kernelEnv) DeleteQdisc(ifindex int, q Qdisc) error {
	return e.ns.DeleteQdisc(ifindex, qdiscKind(q))
}

func (e *kernelEnv) AddClassicFilter(ifindex int, dir tcx.Direction, prog tcx.Program) error {
	p, ok := prog.(*kernel.Program)
	if !ok {
		return fmt.Errorf("add classic filter: %T is not a kernel program", prog)
	}
	return e.ns.AddFilter(ifindex, dir, 1, 1, p)
}

func (e *kernelEnv) DeleteClassicFilter(ifindex int, dir tcx.Direction) error {
	return e.ns.DeleteFilter(ifindex, dir, 1, 1)
}

func (e *kernelEnv) ProgramAlive(id uint32) (bool, error) { return alive(e.b.ProgramByID(id)) }

// PinPath is a path in the backend's private bpffs.
func (e *kernelEnv) PinPath(name string) string { return filepath.Join(e.b.PinDir(), name) }

// Close closes every program handle still open, the map, the backend's
// bpffs and the namespace (which deletes its devices).
func (e *kernelEnv) Close() error {
	var errs []error
	for _, c := range e.colls {
		errs = append(errs, c.Close())
	}
	if e.seen != nil {
		errs = append(errs, e.seen.Close())
	}
	if e.b != nil {
		errs = append(errs, e.b.Close())
	}
	errs = append(errs, e.ns.Close())
	return errors.Join(errs...)
}
