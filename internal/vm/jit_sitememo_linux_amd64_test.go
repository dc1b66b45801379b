package vm

import "testing"

// TestSiteMemoAt checks where site entries live: a load's in the row for
// loads and a store's in the row for stores, whatever the program and
// op (a store that found a load's memo could write a slot translated
// only for reading), each a whole entry of jitState.siteWay, and the
// sites of a program spread over the row.
func TestSiteMemoAt(t *testing.T) {
	row := int32(siteMemos * 8)
	for salt := range uint64(50) {
		c := &jitc{salt: salt * 0x9e3779b97f4a7c15}
		used := map[int32]bool{}
		for pc := range 200 {
			ld, st := c.siteMemoAt(pc, false), c.siteMemoAt(pc, true)
			if ld < offSiteWay || ld >= offSiteWay+row || (ld-offSiteWay)%8 != 0 {
				t.Fatalf("salt %d, op %d: a load's memo at %d, outside the row for loads [%d, %d)", salt, pc, ld, offSiteWay, offSiteWay+row)
			}
			if st < offSiteWay+row || st >= offSiteWay+2*row || (st-offSiteWay)%8 != 0 {
				t.Fatalf("salt %d, op %d: a store's memo at %d, outside the row for stores", salt, pc, st)
			}
			used[ld] = true
		}
		if len(used) < siteMemos/2 {
			t.Errorf("salt %d: 200 sites use %d of %d entries", salt, len(used), siteMemos)
		}
	}
}
