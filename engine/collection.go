package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/tcxgo/tcx/fib"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/skb"
	"github.com/tcxgo/tcx/sock"
)

// DefaultInstructionLimit bounds one run (tail calls and bpf_loop callbacks
// included) when Options.InstructionLimit is 0. The kernel bounds programs
// at load time; a verified program executes far fewer instructions.
const DefaultInstructionLimit = 1 << 24

// Options configure NewCollection.
type Options struct {
	// NumCPU is the number of simulated CPUs: per-CPU maps keep that many
	// values and the collection keeps that many executors for Run, TestRun
	// and Runner. 0 means runtime.NumCPU().
	NumCPU int
	// MemoryLimit caps the bytes one map may preallocate (maps.Options).
	MemoryLimit int64
	// InstructionLimit bounds the instructions one run executes; 0 means
	// DefaultInstructionLimit.
	InstructionLimit uint64
	// Clock returns the time bpf_ktime_get_ns, bpf_ktime_get_boot_ns and
	// bpf_ktime_get_coarse_ns report. nil means monotonic nanoseconds
	// since the collection was created.
	Clock func() uint64
	// TAI returns the time bpf_ktime_get_tai_ns reports: International
	// Atomic Time in nanoseconds since the epoch, as the kernel's
	// CLOCK_TAI. nil means the host's CLOCK_TAI on Linux (the real-time
	// clock plus the kernel's TAI offset) and the real-time clock elsewhere
	// (the offset of a Linux host no NTP daemon has told: 0), unless Clock
	// is set: a caller who fixes the clock fixes this one too.
	TAI func() uint64
	// Rand returns bpf_get_prandom_u32's values; it must be safe for
	// concurrent use. nil gives every executor its own PCG generator.
	Rand func() uint32
	// Trace receives bpf_trace_printk's output, one write per call. nil
	// discards it (the helper still reports the length, as the kernel does
	// with nobody reading the trace pipe).
	Trace io.Writer
	// Devices finds a device by ifindex: test runs with a ctx_in ifindex
	// above 1 and bpf_clone_redirect's device check use it. nil knows only
	// the loopback device (ifindex 1), up: the engine answers like a new
	// network namespace whose loopback device was brought up (what
	// kernel.NewNetNS makes), not like one straight from unshare(2), where
	// lo is down and a clone to it fails (TestKernel_CloneToLoopback).
	Devices skb.DeviceLookup
	// FIB is the routing tables, devices and neighbours bpf_fib_lookup
	// consults. nil is a new network namespace: no routes and forwarding
	// off, so lookups answer BPF_FIB_LKUP_RET_FWD_DISABLED (or -ENODEV
	// for a device other than lo), as the kernel's do there.
	FIB *fib.Table
	// Sockets is the namespace's socket table the socket lookups
	// (bpf_sk_lookup_tcp/udp, bpf_skc_lookup_tcp) search and whose sockets
	// sockmaps hold; a userspace sockmap Update takes a socket's cookie
	// where the kernel takes its fd. nil is a namespace without sockets:
	// every lookup is NULL.
	Sockets *sock.Table
	// Quirks makes the packets of TestRun behave like an older kernel
	// where the skb helpers changed between releases; zero follows the
	// newest kernel the model was compared with (skb.Quirks). A packet the
	// caller passes to Run, and the userspace runtime's packet a Runner
	// runs on, keep their own (skb.Packet.Quirks).
	Quirks skb.Quirks
	// Engine runs the programs in the interpreter or as compiled machine
	// code; the zero value, EngineAuto, compiles where the compiler runs
	// (linux/amd64). Program.Compiled says what a program got.
	Engine Engine
	// MapReplacements are maps, by the spec's map name, used instead of
	// creating new ones, as libbpf reuses a map pinned by name
	// (LIBBPF_PIN_BY_NAME) and cilium/ebpf its MapReplacements: several
	// collections then share one map. Each must match the spec's type,
	// key and value sizes, max_entries and flags (else EINVAL, as
	// libbpf's map_is_reuse_compat) and have NumCPU values per key when
	// per-CPU.
	MapReplacements map[string]maps.Map
	// KernelTypes is the target BTF of CO-RE relocations. nil means the
	// running kernel's (/sys/kernel/btf/vmlinux) when there is one, else
	// the engine's built-in UAPI types (UAPITypes).
	KernelTypes *btf.Spec
	// Strict refuses a collection for what is otherwise a Warning: a
	// check the kernel's verifier makes and the engine makes at load time
	// (combined stack depth, global function arguments, packet access
	// beyond a checked bound) found a program the kernel would refuse.
	Strict bool
	// Logger receives every Warning at level Warn. nil logs nothing (the
	// warnings stay in Collection.Warnings).
	Logger *slog.Logger
}

// Collection is a loaded CollectionSpec: its programs and maps, sharing one
// address space (so they can tail-call each other).
type Collection struct {
	// Programs are the SCHED_CLS programs by name.
	Programs map[string]*Program
	// Syscalls are the BPF_PROG_TYPE_SYSCALL programs by name, which
	// userspace runs (Program.RunSyscall), not packets (syscall.go).
	Syscalls map[string]*Program
	// Maps are all maps by name, including the global data sections
	// (.data, .rodata, .bss, .data.*) as single-entry arrays. A map of a
	// type the engine lacks is missing here; a program using it is refused.
	Maps map[string]maps.Map
	// Warnings are what the load-time checks found (see Options.Strict),
	// and the programs and maps that were left out because no SCHED_CLS
	// program needs them.
	Warnings []Warning

	opts    Options
	numCPU  int
	limit   uint64
	epoch   time.Time
	as      *vm.AddressSpace
	helpers []vm.HelperFunc
	kernCtx uint64 // what bpf_cast_to_kern_ctx returns
	timers  timers
	// plainCtx are the __sk_buff loads and stores that are accesses of
	// the image (skb.CtxImageAccess).
	plainCtx *vm.CtxPolicy
	entries  []*mapEntry      // by link index
	missing  map[string]error // maps the engine could not create, by name
	pool     execPool
	closed   atomic.Bool
	traceMu  sync.Mutex
}

// mapEntry is one map as programs see it: the object behind a map handle
// and where its value slots are mapped.
type mapEntry struct {
	name      string
	m         maps.Map
	keySize   uint32
	valueSize uint32
	slots     maps.SlotMap // nil for maps without value slots
	percpu    bool
	stride    uint64
	base      []uint64 // address of slot 0, per CPU (one entry unless percpu)
	handle    uint64
}

type poolSlot struct {
	busy atomic.Bool
	x    *Executor
}

// LoadCollectionSpec parses an ELF object with cilium/ebpf (programs, BTF
// maps, global data, relocations); the result goes to NewCollection.
func LoadCollectionSpec(path string) (*ebpf.CollectionSpec, error) {
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return nil, fmt.Errorf("load collection spec: %w", err)
	}
	return spec, nil
}

// LoadCollection is LoadCollectionSpec followed by NewCollection.
func LoadCollection(path string, opts Options) (*Collection, error) {
	spec, err := LoadCollectionSpec(path)
	if err != nil {
		return nil, err
	}
	return NewCollection(spec, opts)
}

// NewCollection creates the maps of spec, links and loads its programs and
// fills its prog arrays. spec is not modified. Every program must be
// SCHED_CLS; a program the interpreter refuses (bad instruction, unknown
// helper) fails the whole collection with a *ValidationError naming the
// program, the instruction and the reason.
func NewCollection(spec *ebpf.CollectionSpec, opts Options) (*Collection, error) {
	if spec == nil {
		return nil, fmt.Errorf("new collection: nil spec: %w", syscall.EINVAL)
	}
	if opts.NumCPU < 0 {
		return nil, fmt.Errorf("new collection: NumCPU %d: %w", opts.NumCPU, syscall.EINVAL)
	}
	c := &Collection{
		Programs: make(map[string]*Program),
		Syscalls: make(map[string]*Program),
		Maps:     make(map[string]maps.Map),
		opts:     opts,
		numCPU:   opts.NumCPU,
		limit:    opts.InstructionLimit,
		epoch:    time.Now(),
		as:       vm.NewAddressSpace(),
		missing:  make(map[string]error),
		plainCtx: vm.CtxImageFunc(skb.CtxSize, skb.CtxImageAccess),
	}
	if c.numCPU == 0 {
		c.numCPU = runtime.NumCPU()
	}
	if c.limit == 0 {
		c.limit = DefaultInstructionLimit
	}
	c.helpers = addKfuncs(helperTable())
	c.kernCtx = c.as.NewHandle(kernCtx{})
	c.pool.init(c.numCPU)

	mapIndex, err := c.createMaps(spec)
	if err != nil {
		return nil, err
	}
	if err := c.loadPrograms(spec, mapIndex); err != nil {
		return nil, err
	}
	if err := c.fillMapsOfMaps(spec); err != nil {
		return nil, err
	}
	if err := c.fillProgArrays(spec); err != nil {
		return nil, err
	}
	return c, nil
}

// NumCPU is the number of simulated CPUs.
func (c *Collection) NumCPU() int { return c.numCPU }

func (c *Collection) createMaps(spec *ebpf.CollectionSpec) (map[string]int, error) {
	names := sortedKeys(spec.Maps)
	index := make(map[string]int, len(names))
	mopts := maps.Options{NumCPU: c.numCPU, MemoryLimit: c.opts.MemoryLimit, ResolveSocket: c.socketByCookie}
	for _, name := range names {
		ms := spec.Maps[name].Copy()
		if ms.Name == "" {
			ms.Name = name
		}
		if err := applyVariables(ms, spec.Variables, name); err != nil {
			return nil, fmt.Errorf("new collection: %w", err)
		}
		m, err := c.newMap(name, ms, mopts)
		if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOTSUP) {
			// Refused only if a program uses it (link), as objects declare
			// maps for the other program types they hold.
			c.missing[name] = err
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("new collection: map %q: %w", name, err)
		}
		if _, shared := c.opts.MapReplacements[name]; !shared {
			if err := c.setKptrs(name, m, ms); err != nil {
				c.missing[name] = err
				continue
			}
		}
		info := m.Info()
		e := &mapEntry{name: name, m: m, keySize: info.KeySize, valueSize: info.ValueSize}
		if sm, ok := m.(maps.SlotMap); ok {
			if err := c.mapSlots(e, sm, ms.Flags&maps.FlagRdonlyProg != 0, info.Frozen); err != nil {
				return nil, fmt.Errorf("new collection: map %q: %w", name, err)
			}
		}
		e.handle = c.newHandle(e)
		index[name] = len(c.entries)
		c.entries = append(c.entries, e)
		c.Maps[name] = m
	}
	return index, nil
}

// newHandle is the handle programs name e by. An array's handle describes
// its values, so compiled code answers bpf_map_lookup_elem on it without
// calling mapLookupElem (which gives the same answers: e.lookup).
func (c *Collection) newHandle(e *mapEntry) uint64 {
	if e.slots == nil || e.stride > math.MaxUint32 {
		return c.as.NewHandle(e)
	}
	bases := make([]uint64, c.numCPU)
	for cpu := range bases {
		bases[cpu] = e.valueAddr(cpu, 0)
	}
	switch m := e.m.(type) {
	case *maps.Array:
		if e.keySize == 4 {
			return c.as.NewArrayHandle(e, m.Info().MaxEntries, uint32(e.stride), bases)
		}
	case *maps.Hash:
		if h, ok := hashHandle(c.as, e, m, bases); ok {
			return h
		}
	}
	return c.as.NewHandle(e)
}

// hashHandle describes hash map m to compiled code (see newHandle).
func hashHandle(as *vm.AddressSpace, e *mapEntry, m *maps.Hash, bases []uint64) (uint64, bool) {
	l := m.Layout()
	if l.NextWord != vm.HashNodeNext || l.HashWord != vm.HashNodeHash || l.KeyWord != vm.HashNodeKey {
		return 0, false
	}
	h, err := as.NewHashHandle(e, vm.HashLayout{
		Heads: l.Heads, Nodes: l.Nodes, NodeWords: l.NodeWords, KeySize: l.KeySize,
		Seed: l.Seed, HashMask: l.HashMask, JHash: l.JHash, Ref: l.Ref, Bases: bases, Stride: uint32(e.stride),
	})
	return h, err == nil
}

// newMap creates the map of ms or returns its compatible replacement.
func (c *Collection) newMap(name string, ms *ebpf.MapSpec, mopts maps.Options) (maps.Map, error) {
	r, ok := c.opts.MapReplacements[name]
	if !ok {
		return maps.New(ms, mopts)
	}
	if r == nil {
		return nil, fmt.Errorf("nil replacement: %w", syscall.EINVAL)
	}
	info := r.Info()
	if info.Type != ms.Type || info.KeySize != ms.KeySize || info.ValueSize != ms.ValueSize ||
		info.MaxEntries != ms.MaxEntries || info.Flags != ms.Flags {
		return nil, fmt.Errorf("replacement %s key %d value %d max %d flags %#x does not match %s key %d value %d max %d flags %#x: %w",
			info.Type, info.KeySize, info.ValueSize, info.MaxEntries, info.Flags,
			ms.Type, ms.KeySize, ms.ValueSize, ms.MaxEntries, ms.Flags, syscall.EINVAL)
	}
	if sm, ok := r.(maps.SlotMap); ok && sm.NumCPU() > 1 && sm.NumCPU() != c.numCPU {
		return nil, fmt.Errorf("replacement has %d CPUs, collection %d: %w", sm.NumCPU(), c.numCPU, syscall.EINVAL)
	}
	return r, nil
}

// mapSlots maps every CPU's value memory of sm into the address space,
// confining each access to one value (Stride, SlotSize).
// A map programs cannot write and userspace no longer can (frozen:
// .rodata) is constant: compiled code folds its loads (vm.Region.Constant);
// the collection unmaps it only when it closes, after which nothing runs.
func (c *Collection) mapSlots(e *mapEntry, sm maps.SlotMap, readOnly, frozen bool) error {
	e.slots, e.percpu, e.stride = sm, sm.NumCPU() > 1, uint64(sm.Stride())
	for cpu := range sm.NumCPU() {
		addr, err := c.as.Map(vm.Region{Data: sm.Slots(cpu), Stride: sm.Stride(), SlotSize: sm.ValueSize(),
			ReadOnly: readOnly, Constant: readOnly && frozen})
		if err != nil {
			return err
		}
		e.base = append(e.base, addr)
	}
	return nil
}

// resolveMap answers the interpreter's ld_imm64 map references, whose ID
// link set to the map's index.
func (c *Collection) resolveMap(ref vm.MapRef) (uint64, error) {
	if ref.ID < 0 || int(ref.ID) >= len(c.entries) {
		return 0, fmt.Errorf("no map with index %d: %w", ref.ID, syscall.EBADF)
	}
	e := c.entries[ref.ID]
	if !ref.Value() {
		return e.handle, nil
	}
	// array_map_direct_value_addr: only non-per-CPU arrays, inside the
	// (single addressable) first value.
	info := e.m.Info()
	if info.Type != ebpf.Array || e.slots == nil {
		return 0, fmt.Errorf("map %q (%s) has no direct value access: %w", e.name, info.Type, syscall.EINVAL)
	}
	if ref.Offset >= info.ValueSize {
		return 0, fmt.Errorf("offset %d beyond value size %d of map %q: %w", ref.Offset, info.ValueSize, e.name, syscall.EINVAL)
	}
	return e.base[0] + uint64(ref.Offset), nil
}

func (c *Collection) loadPrograms(spec *ebpf.CollectionSpec, mapIndex map[string]int) error {
	policy := vm.CtxPolicyFunc(skb.CtxSize, skb.CtxAccess)
	env := &linkEnv{progs: spec.Programs, mapIndex: mapIndex, missing: c.missing, rel: newRelocator(spec, c.opts.KernelTypes)}
	var skipped []string
	for _, name := range sortedKeys(spec.Programs) {
		ps := spec.Programs[name]
		if ps.Type == ebpf.Syscall {
			if err := c.loadSyscall(name, env); err != nil {
				return err
			}
			continue
		}
		if ps.Type != ebpf.SchedCLS {
			skipped = append(skipped, fmt.Sprintf("%s (%s, section %q)", name, ps.Type, ps.SectionName))
			continue
		}
		insns, err := link(name, env)
		if err != nil {
			return fmt.Errorf("new collection: %w", err)
		}
		if err := c.check(name, insns); err != nil {
			return fmt.Errorf("new collection: %w", err)
		}
		vp, err := vm.Load(insns, vm.Options{
			Helpers:       c.helpers,
			Maps:          c.resolveMap,
			Ctx:           policy,
			AddressSpace:  c.as,
			Engine:        c.opts.Engine.vm(),
			ArrayLookup:   int32(asm.FnMapLookupElem),
			PacketHelpers: packetHelpers,
			// skb->data and data_end: what tc programs bound their packet
			// accesses with (the image holds the packet window's ends).
			PacketPointers: vm.PacketPointers{Data: skb.CtxData, End: skb.CtxDataEnd},
		})
		if err != nil {
			return fmt.Errorf("new collection: program %q: %w%s", name, err, sourceOf(insns, err))
		}
		c.Programs[name] = newProgram(c, name, ps.SectionName, vp, insns)
	}
	if len(c.Programs) == 0 && len(c.Syscalls) == 0 && len(skipped) > 0 {
		return fmt.Errorf("new collection: no SCHED_CLS program (not SCHED_CLS: %s): %w", strings.Join(skipped, ", "), syscall.EINVAL)
	}
	for _, s := range skipped {
		c.warn(Warning{Check: CheckSkipped, Insn: -1, Msg: "program " + s + " left out: the engine runs SCHED_CLS programs only"})
	}
	for _, name := range sortedKeys(c.missing) {
		c.warn(Warning{Check: CheckSkipped, Insn: -1, Msg: fmt.Sprintf("map %q left out (no SCHED_CLS program uses it): %v", name, c.missing[name])})
	}
	return nil
}

// fillProgArrays stores the programs named in prog arrays' initial contents
// (__array(values, ...) in the ELF), as cilium/ebpf's loader does.
func (c *Collection) fillProgArrays(spec *ebpf.CollectionSpec) error {
	for _, e := range c.entries {
		pa, ok := e.m.(*maps.ProgramArray)
		if !ok {
			continue
		}
		for _, kv := range spec.Maps[e.name].Contents {
			key, ok := kv.Key.(uint32)
			if !ok {
				return fmt.Errorf("new collection: prog array %q: key %v is %T, want uint32: %w", e.name, kv.Key, kv.Key, syscall.EINVAL)
			}
			pname, ok := kv.Value.(string)
			if !ok {
				return fmt.Errorf("new collection: prog array %q: value of key %d is %T, want a program name: %w", e.name, key, kv.Value, syscall.EINVAL)
			}
			p := c.Programs[pname]
			if p == nil && spec.Programs[pname] != nil && spec.Programs[pname].Type != ebpf.SchedCLS {
				continue // left out; the kernel refuses a tail call across program types too
			}
			if p == nil {
				return fmt.Errorf("new collection: prog array %q: no program %q: %w", e.name, pname, syscall.ENOENT)
			}
			if err := pa.Set(key, p); err != nil {
				return fmt.Errorf("new collection: prog array %q: %w", e.name, err)
			}
		}
	}
	return nil
}

// fillMapsOfMaps stores the maps named in maps of maps' initial contents
// (__array(values, ...) in the ELF), as cilium/ebpf's loader does.
func (c *Collection) fillMapsOfMaps(spec *ebpf.CollectionSpec) error {
	for _, e := range c.entries {
		o, ok := e.m.(*maps.MapOfMaps)
		if !ok {
			continue
		}
		for _, kv := range spec.Maps[e.name].Contents {
			key, ok := kv.Key.(uint32)
			name, ok2 := kv.Value.(string)
			if !ok || !ok2 {
				return fmt.Errorf("new collection: map of maps %q: entry %v => %v: want a uint32 key and a map name: %w", e.name, kv.Key, kv.Value, syscall.EINVAL)
			}
			inner := c.Maps[name]
			if inner == nil {
				return fmt.Errorf("new collection: map of maps %q: no map %q: %w", e.name, name, syscall.ENOENT)
			}
			if err := o.Set(binary.LittleEndian.AppendUint32(nil, key), inner, maps.UpdateAny); err != nil {
				return fmt.Errorf("new collection: map of maps %q: %w", e.name, err)
			}
		}
	}
	return nil
}

// entryOf is the collection's entry for map m, nil if m is not one of its
// maps.
func (c *Collection) entryOf(m maps.Map) *mapEntry {
	for _, e := range c.entries {
		if e.m == m {
			return e
		}
	}
	return nil
}

// Close makes the collection unusable: later runs fail with EBADF and every
// map region and handle is unmapped (runs in progress finish first, on the
// snapshot they started with). Maps stay readable through Maps.
func (c *Collection) Close() error {
	if c.closed.Swap(true) {
		return fmt.Errorf("close collection: %w", syscall.EBADF)
	}
	c.timers.wake() // a ServeTimers returns
	c.freeKptrs()
	var errs []error
	for _, e := range c.entries {
		for _, addr := range e.base {
			errs = append(errs, c.as.Unmap(addr))
		}
		errs = append(errs, c.as.Unmap(e.handle))
	}
	return errors.Join(errs...)
}

// tai is bpf_ktime_get_tai_ns's clock.
func (c *Collection) tai() uint64 {
	switch {
	case c.opts.TAI != nil:
		return c.opts.TAI()
	case c.opts.Clock != nil:
		return c.opts.Clock()
	}
	return hostTAI()
}

// now is the clock of the other ktime helpers.
func (c *Collection) now() uint64 {
	if c.opts.Clock != nil {
		return c.opts.Clock()
	}
	return uint64(time.Since(c.epoch).Nanoseconds()) + 1
}

// sourceOf names the source line (BTF line info) of the instruction a
// validation error is about, if the ELF had it.
func sourceOf(insns asm.Instructions, err error) string {
	var ve *vm.ValidationError
	if !errors.As(err, &ve) || ve.Index < 0 || ve.Index >= len(insns) {
		return ""
	}
	if src := insns[ve.Index].Source(); src != nil {
		return fmt.Sprintf(" (source: %s)", strings.TrimSpace(src.String()))
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// String names the collection's programs.
func (c *Collection) String() string {
	return fmt.Sprintf("engine.Collection(%s)", strings.Join(sortedKeys(c.Programs), ", "))
}
