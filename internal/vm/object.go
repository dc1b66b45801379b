package vm

// Object is the object a handle (AddressSpace.NewHandle) stands for now,
// else the one it stood for when the current run started. A helper
// resolving a handle through it sees what the kernel's RCU readers see: an
// object unmapped while the run goes on (its last reference dropped by
// another CPU) stays usable until the run ends, and one made during the
// run is found too. (A handle's slot reused during the run names the new
// object: in the kernel, freed memory is not reused under a reader.)
func (m *Machine) Object(handle uint64) (any, bool) {
	if m.as != nil {
		if obj, ok := m.as.Object(handle); ok {
			return obj, true
		}
	}
	id := handle >> 32
	if uint32(handle) == 0 && id >= firstShared && id < uint64(len(m.regions)) {
		if obj := m.regions[id].obj; obj != nil {
			return obj, true
		}
	}
	return nil, false
}
