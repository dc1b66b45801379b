package ops

import (
	"testing"

	"github.com/tcxgo/tcx/kernel"
)

// TestLegacyPriority checks how tcx's anchors become cls_bpf priorities.
func TestLegacyPriority(t *testing.T) {
	fs := []kernel.ClassicFilter{{Priority: 1000, Handle: 1, ProgID: 10}, {Priority: 1001, Handle: 1, ProgID: 11}, {Priority: 1005, Handle: 2, ProgID: 12}}
	for _, c := range []struct {
		place   Placement
		filters []kernel.ClassicFilter
		prio    uint16
		handle  uint32
		replace bool
		fails   bool
	}{
		{Placement{}, nil, LegacyFirstPriority, 1, false, false},
		{Placement{Mode: PlaceBefore, Ref: Ref{Kind: RefHead}}, nil, LegacyFirstPriority, 1, false, false},
		{Placement{Mode: PlaceBefore, Ref: Ref{Kind: RefID, ID: 10}}, nil, 0, 0, false, true},
		{Placement{}, fs, 1006, 1, false, false},
		{Placement{Mode: PlaceBefore, Ref: Ref{Kind: RefHead}}, fs, 999, 1, false, false},
		{Placement{Mode: PlaceBefore, Ref: Ref{Kind: RefID, ID: 10}}, fs, 999, 1, false, false},
		{Placement{Mode: PlaceAfter, Ref: Ref{Kind: RefID, ID: 10}}, fs, 0, 0, false, true}, // 1001 is taken
		{Placement{Mode: PlaceBefore, Ref: Ref{Kind: RefID, ID: 11}}, fs, 0, 0, false, true},
		{Placement{Mode: PlaceAfter, Ref: Ref{Kind: RefPrio, ID: 1001}}, fs, 1002, 1, false, false},
		{Placement{Mode: PlaceReplace, Ref: Ref{Kind: RefID, ID: 12}}, fs, 1005, 2, true, false},
		{Placement{Mode: PlaceAfter, Ref: Ref{Kind: RefLink, ID: 3}}, fs, 0, 0, false, true},
		{Placement{Mode: PlaceAfter, Ref: Ref{Kind: RefID, ID: 99}}, fs, 0, 0, false, true},
		{Placement{Mode: PlaceBefore, Ref: Ref{Kind: RefHead}}, []kernel.ClassicFilter{{Priority: 1}}, 0, 0, false, true},
		{Placement{}, []kernel.ClassicFilter{{Priority: 0xffff}}, 0, 0, false, true},
	} {
		prio, handle, replace, err := legacyPriority(append([]kernel.ClassicFilter(nil), c.filters...), c.place)
		if (err != nil) != c.fails || (!c.fails && (prio != c.prio || handle != c.handle || replace != c.replace)) {
			t.Errorf("%+v on %v: prio %d handle %d replace %v err %v", c.place, c.filters, prio, handle, replace, err)
		}
	}
}
