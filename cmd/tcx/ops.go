package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tcxgo/tcx/ops"
)

// exitStatus is an error that only sets the exit status (the command has
// printed everything already).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// hostFlags are the flags every host command shares: where to work.
type hostFlags struct {
	netns, bpffs, mapPinDir, stateDir string
}

func (f *hostFlags) add(cmd *cobra.Command, pins bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.netns, "netns", "", "network namespace: `NS` is a name in /run/netns (ip netns) or a path such as /proc/PID/ns/net (default: tcx's own)")
	fl.StringVar(&f.stateDir, "state-dir", "", "`DIR` of ownership records (env TCX_STATE_DIR; default "+ops.DefaultStateDir+")")
	fl.StringVar(&f.bpffs, "bpffs", "", "bpffs `DIR` for pins (env TCX_BPFFS; default "+ops.DefaultBPFFS+", and pins are then looked for in every mounted bpffs)")
	if pins {
		fl.StringVar(&f.mapPinDir, "map-pin-dir", "", "bpffs `DIR` where LIBBPF_PIN_BY_NAME maps are pinned and reused (default: the bpffs root, as libbpf)")
	}
}

// orEnv is the flag's value, else the environment's.
func orEnv(flag, name string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv(name)
}

func (f *hostFlags) open() (ops.Host, error) {
	return ops.OpenKernel(ops.Config{NetNS: f.netns, BPFFS: orEnv(f.bpffs, "TCX_BPFFS"), MapPinDir: f.mapPinDir,
		StateDir: orEnv(f.stateDir, "TCX_STATE_DIR"), SetVariables: setVariables})
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// exactArgs is cobra.ExactArgs with the command's own words.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %s, got %d argument(s); see tcx %s --help", cmd.Name(), what, len(args), cmd.CommandPath()[len("tcx "):])
		}
		return nil
	}
}

func newShowCommand() *cobra.Command {
	var hf hostFlags
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "show [DEV] [--netns NS] [--json]",
		Short: "Show every BPF program on a namespace's devices: tcx chains, classic cls_bpf, XDP, netkit",
		Long: `show lists, for every device of a network namespace (or one), both tcx
hooks in run order with each program's position, ID, name, tag, type and
load time, its link ID, the bpffs pins and the processes (pid, comm) keeping
the link alive, and the hook's revision; then the classic cls_bpf filters of
clsact (which run after tcx), the XDP program and netkit chains.

Attachments made by tcx carry their ownership record (who, when, from which
object and sha256, the command line, --label); anything else is marked
foreign. show changes nothing. --json prints the stable schema tcx.show/v1
(ops/SCHEMA.md).`,
		Example: `  # everything on the host's devices
  sudo tcx show

  # one device of a container's namespace, for scripts
  sudo tcx show eth0 --netns /proc/4242/ns/net --json

  # a namespace made with ip netns add
  sudo tcx show --netns blue`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := hf.open()
			if err != nil {
				return err
			}
			defer h.Close()
			dev := ""
			if len(args) == 1 {
				dev = args[0]
			}
			s, err := h.Show(cmd.Context(), dev)
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(cmd.OutOrStdout(), s)
			}
			ops.WriteSnapshot(cmd.OutOrStdout(), s)
			return nil
		},
	}
	hf.add(cmd, false)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON (schema tcx.show/v1)")
	return cmd
}

func placement(before, after, replace string) (ops.Placement, error) {
	var p ops.Placement
	n := 0
	for _, c := range []struct{ mode, ref string }{{ops.PlaceBefore, before}, {ops.PlaceAfter, after}, {ops.PlaceReplace, replace}} {
		if c.ref == "" {
			continue
		}
		n++
		ref, err := ops.ParseRef(c.ref)
		if err != nil {
			return p, fmt.Errorf("--%s: %w", c.mode, err)
		}
		p = ops.Placement{Mode: c.mode, Ref: ref}
	}
	if n > 1 {
		return p, fmt.Errorf("give at most one of --before, --after and --replace")
	}
	return p, nil
}

func newAttachCommand(cmdline []string) *cobra.Command {
	var (
		hf                     hostFlags
		req                    ops.AttachRequest
		before, after, replace string
		sets                   []string
	)
	cmd := &cobra.Command{
		Use:   "attach DEV {ingress|egress} OBJ [--prog NAME] [--before REF|--after REF|--replace REF] [flags]",
		Short: "Attach a tc program from an ELF object to a device's tcx hook (pinned link)",
		Long: `attach loads a program of a clang-built ELF object into the kernel and
attaches it to a tcx hook of DEV with a BPF link. Because tcx exits right
after, the link is pinned in bpffs, by default at
  BPFFS/tcx/NETNS/DEV-HOOK-PROG-LINKID   (BPFFS is /sys/fs/bpf, NETNS "host")
or at --pin PATH; it stays attached until "tcx detach" or "tcx link detach".
--plain attaches without a link instead (the program stays until detached).

Where it goes: the tail of the chain by default, or --before/--after REF,
where REF is id:N (a program ID), link:N (a link ID), pin:PATH (a pinned link
or program), head or tail. --expected-revision N makes the attach fail with
ESTALE if the hook changed since you looked at it (tcx show prints it).
--replace REF (with --plain) swaps a plain attachment.

Maps the object marks LIBBPF_PIN_BY_NAME are pinned under --map-pin-dir
(default: the bpffs root, like libbpf) and reused when already there. An
attach that fails leaves no new pins, records or qdiscs behind.

Every attach writes an ownership record (who, when, object path and sha256,
this command line, --label) into --state-dir (default /run/tcx/owners),
which tcx show prints.

--legacy attaches a classic clsact + cls_bpf (direct-action) filter instead,
as tcx does by itself on kernels without tcx (before 6.6); --before/--after
are then emulated by filter priorities (lower runs first; the first filter
gets priority 1000) and REF may also be prio:N.`,
		Example: `  # count packets on eth0 ingress (a pinned link under /sys/fs/bpf/tcx)
  sudo tcx attach eth0 ingress testdata/progs/ops/pin_counter.o --label "pkt counter"

  # in front of program 42, only if nobody changed the hook since revision 7
  sudo tcx attach eth0 ingress testdata/progs/qos_mark.o --before id:42 --expected-revision 7

  # after a link pinned by another tool, with a global variable set
  sudo tcx attach eth0 egress testdata/progs/ops/pin_counter.o --after pin:/sys/fs/bpf/cilium/link --set verdict=0

  # in a container's namespace, with the pin where you want it
  sudo tcx attach eth0 ingress prog.o --netns /proc/4242/ns/net --pin /sys/fs/bpf/myapp/ingress

  # the classic way (clsact + cls_bpf), as on kernels before 6.6
  sudo tcx attach eth0 ingress prog.o --legacy --before prio:1000`,
		Args: exactArgs(3, "DEV, a hook (ingress or egress) and an ELF object"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Device, req.Direction, req.Object = args[0], args[1], args[2]
			var err error
			if req.Place, err = placement(before, after, replace); err != nil {
				return err
			}
			req.Set, req.Command = sets, cmdline
			h, err := hf.open()
			if err != nil {
				return err
			}
			defer h.Close()
			res, err := h.Attach(cmd.Context(), req)
			if err != nil {
				return err
			}
			ops.WriteAttach(cmd.OutOrStdout(), res)
			return nil
		},
	}
	hf.add(cmd, true)
	f := cmd.Flags()
	f.StringVar(&req.Program, "prog", "", "program `NAME` in the object (default: its only tc program)")
	f.StringVar(&before, "before", "", "attach in front of `REF`")
	f.StringVar(&after, "after", "", "attach after `REF`")
	f.StringVar(&replace, "replace", "", "replace the plain attachment `REF` (with --plain or --legacy)")
	f.Uint64Var(&req.ExpectedRevision, "expected-revision", 0, "fail with ESTALE unless the hook is at revision `N`")
	f.StringVar(&req.Pin, "pin", "", "pin the link at `PATH` (in bpffs) instead of the default")
	f.StringArrayVar(&sets, "set", nil, "set a global variable before loading, `NAME=VALUE`; repeatable")
	f.StringVar(&req.Label, "label", "", "a `NOTE` kept in the ownership record")
	f.BoolVar(&req.Plain, "plain", false, "attach without a link (BPF_PROG_ATTACH)")
	f.BoolVar(&req.Legacy, "legacy", false, "use classic clsact + cls_bpf instead of tcx")
	return cmd
}

func newDetachCommand() *cobra.Command {
	var (
		hf  hostFlags
		req ops.DetachRequest
	)
	cmd := &cobra.Command{
		Use:   "detach DEV {ingress|egress} REF [--netns NS]",
		Short: "Detach a program or link from a device's tcx hook",
		Long: `detach removes one attachment from a hook. REF is id:N (a program ID), link:N
(a link ID), pin:PATH (a pinned link or program), head or tail (the first or
last of the chain). A link is detached (BPF_LINK_DETACH) and the pin tcx made
for it removed; pins other tools made stay, and are named, since they keep
the now defunct link alive. A program attached through a link cannot be
detached plainly: the kernel answers EBUSY and tcx names the link.

--legacy (or REF prio:N) deletes a classic cls_bpf filter instead.`,
		Example: `  # the link tcx attach printed
  sudo tcx detach eth0 ingress link:7

  # the first program of the chain
  sudo tcx detach eth0 ingress head

  # a classic filter by priority
  sudo tcx detach eth0 ingress prio:1000 --legacy`,
		Args: exactArgs(3, "DEV, a hook (ingress or egress) and a REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Device, req.Direction = args[0], args[1]
			ref, err := ops.ParseRef(args[2])
			if err != nil {
				return err
			}
			req.Ref = ref
			h, err := hf.open()
			if err != nil {
				return err
			}
			defer h.Close()
			res, err := h.Detach(cmd.Context(), req)
			if err != nil {
				return err
			}
			ops.WriteDetach(cmd.OutOrStdout(), res)
			return nil
		},
	}
	hf.add(cmd, false)
	cmd.Flags().BoolVar(&req.Legacy, "legacy", false, "delete a classic cls_bpf filter")
	return cmd
}

func newLinkCommand(cmdline []string) *cobra.Command {
	link := &cobra.Command{
		Use:   "link {update|detach} PIN ...",
		Short: "Change a pinned tcx link: swap its program or detach it",
		Example: `  sudo tcx link update /sys/fs/bpf/tcx/host/eth0-ingress-pin_counter-7 new.o
  sudo tcx link detach /sys/fs/bpf/tcx/host/eth0-ingress-pin_counter-7`,
	}
	var (
		hf   hostFlags
		req  ops.UpdateRequest
		sets []string
	)
	update := &cobra.Command{
		Use:   "update PIN OBJ [--prog NAME]",
		Short: "Swap the program of a pinned tcx link in place (BPF_LINK_UPDATE)",
		Long: `update loads a program from OBJ and makes the link pinned at PIN run it
instead of its current one, atomically and at the same position of the
chain; the link ID, its pins and the hook's order stay. The ownership record
follows the new program.`,
		Example: `  sudo tcx link update /sys/fs/bpf/tcx/host/eth0-ingress-pin_counter-7 testdata/progs/qos_mark.o
  sudo tcx link update /sys/fs/bpf/myapp/ingress prog.o --prog v2 --set verdict=0`,
		Args: exactArgs(2, "a link pin and an ELF object"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Pin, req.Object, req.Set, req.Command = args[0], args[1], sets, cmdline
			h, err := hf.open()
			if err != nil {
				return err
			}
			defer h.Close()
			res, err := h.UpdateLink(cmd.Context(), req)
			if err != nil {
				return err
			}
			ops.WriteUpdate(cmd.OutOrStdout(), res)
			return nil
		},
	}
	hf.add(update, true)
	update.Flags().StringVar(&req.Program, "prog", "", "program `NAME` in the object (default: its only tc program)")
	update.Flags().StringArrayVar(&sets, "set", nil, "set a global variable before loading, `NAME=VALUE`; repeatable")
	var dhf hostFlags
	detach := &cobra.Command{
		Use:   "detach PIN",
		Short: "Detach a pinned tcx link and remove its pin",
		Long: `detach detaches the link pinned at PIN from its hook (BPF_LINK_DETACH) and
removes the pin, so the link and its program are freed once nothing else
holds them (other pins are named if there are any).`,
		Example: `  sudo tcx link detach /sys/fs/bpf/tcx/host/eth0-ingress-pin_counter-7`,
		Args:    exactArgs(1, "a link pin"),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := dhf.open()
			if err != nil {
				return err
			}
			defer h.Close()
			res, err := h.DetachLink(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			ops.WriteDetach(cmd.OutOrStdout(), res)
			return nil
		},
	}
	dhf.add(detach, false)
	link.AddCommand(update, detach)
	return link
}

func newDoctorCommand() *cobra.Command {
	var (
		hf      hostFlags
		jsonOut bool
	)
	cmd := &cobra.Command{
		Use:   "doctor [--netns NS] [--json]",
		Short: "Find broken or risky BPF attachments; exit status 2 when there is a problem",
		Long: `doctor looks for:
  - defunct tcx links (device deleted or link detached) and the pins or
    processes keeping them and their programs alive;
  - a program ID attached twice on one hook (tcx or cls_bpf);
  - tcx programs and classic cls_bpf filters on the same hook (tcx runs
    first; the filters run only when every tcx program returns TCX_NEXT);
  - hooks at or near the kernel's limit of 63 programs;
  - ownership records whose attachment is gone.
Exit status: 0 nothing found (warnings allowed), 2 problems found, 1 doctor
could not look. --json prints the schema tcx.doctor/v1 (ops/SCHEMA.md).`,
		Example: `  sudo tcx doctor
  sudo tcx doctor --netns blue --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := hf.open()
			if err != nil {
				return err
			}
			defer h.Close()
			r, err := h.Doctor(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOut {
				err = writeJSON(cmd.OutOrStdout(), r)
			} else {
				ops.WriteReport(cmd.OutOrStdout(), r)
			}
			if err == nil && r.Problems > 0 {
				return exitStatus(2)
			}
			return err
		},
	}
	hf.add(cmd, false)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON (schema tcx.doctor/v1)")
	return cmd
}
