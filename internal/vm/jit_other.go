//go:build !(linux && amd64)

package vm

// native is compiled code; there is none on this platform.
type native struct{ calls bool }

func compileNative(p *Program) { p.nativeWhy = "no compiler for this platform" }

func (m *Machine) runNative(p *Program, pc, base int) (uint64, error) {
	panic("vm: no compiled code on this platform")
}

// RunCtx is Run(p): r1 is CtxAddr (0 without a context).
func (m *Machine) RunCtx(p *Program) (uint64, error) { return m.run(p, 0, nil) }

// jitCtxSites has no compiled code to publish to.
func (m *Machine) jitCtxSites(*Program) {}

// jitContext has no compiled code to publish to.
func (m *Machine) jitContext(*Program) {}

// CtxSiteWords is 0: there is no compiled code on this platform.
func (p *Program) CtxSiteWords() uint64 { return 0 }
