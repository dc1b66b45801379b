package ops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseRef(t *testing.T) {
	for in, want := range map[string]Ref{
		"head": {Kind: RefHead}, "tail": {Kind: RefTail}, "id:42": {Kind: RefID, ID: 42},
		"link:7": {Kind: RefLink, ID: 7}, "pin:/sys/fs/bpf/x": {Kind: RefPin, Path: "/sys/fs/bpf/x"},
		"prio:65535": {Kind: RefPrio, ID: 65535},
	} {
		got, err := ParseRef(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseRef(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "first", "id:", "id:0", "id:-1", "id:4294967296", "prio:65536", "pin:", "map:3"} {
		if _, err := ParseRef(in); err == nil {
			t.Errorf("ParseRef(%q) accepted", in)
		}
	}
}

func TestRecords_RoundTripAndIndex(t *testing.T) {
	r := NewRecords(t.TempDir())
	ns := NetNS{Name: "blue", Inode: 99}
	link := &Owner{Kind: KindLink, LinkID: 7, ProgID: 42, NetNS: ns, Device: "eth0", Ifindex: 2, Direction: "ingress", Time: time.Unix(1, 0).UTC()}
	plain := &Owner{Kind: KindPlain, ProgID: 43, NetNS: ns, Ifindex: 2, Direction: "egress"}
	classic := &Owner{Kind: KindClassic, ProgID: 44, NetNS: ns, Ifindex: 2, Direction: "ingress", Priority: 1000}
	for _, o := range []*Owner{link, plain, classic} {
		if err := r.Put(o); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(r.dir, "broken.json"), []byte("{"), 0o644)
	recs, bad := r.All()
	if len(recs) != 3 || len(bad) != 1 {
		t.Fatalf("All: %d records, bad %v", len(recs), bad)
	}
	ix := newIndex(recs)
	if o := ix.link(7, 42); o == nil || o.Device != "eth0" || !o.Time.Equal(link.Time) {
		t.Errorf("link record %+v", o)
	}
	if ix.link(7, 41) != nil {
		t.Errorf("a record matched a link that runs another program")
	}
	if ix.plainAt(99, 2, "egress", 43) == nil || ix.plainAt(98, 2, "egress", 43) != nil {
		t.Errorf("plain record lookup by namespace")
	}
	if ix.classicAt(99, 2, "ingress", 1000, 44) == nil || ix.classicAt(99, 2, "ingress", 1000, 45) != nil {
		t.Errorf("classic record lookup by program")
	}
	if err := r.Delete(link); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(link); err != nil {
		t.Errorf("deleting a missing record: %v", err)
	}
	if recs, _ := r.All(); len(recs) != 2 {
		t.Errorf("after delete: %d records", len(recs))
	}
}

func TestNewOwner_HashesTheObject(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.o")
	os.WriteFile(p, []byte("abc"), 0o644)
	o, err := newOwner(KindLink, p, "prog", []string{"tcx", "attach"}, "l", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if o.SHA256 != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" || o.PID != os.Getpid() || o.Object != p || o.User == "" {
		t.Errorf("owner %+v", o)
	}
	if _, err := newOwner(KindLink, p+".missing", "", nil, "", time.Now()); err == nil {
		t.Errorf("no error for a missing object")
	}
}

func TestFdinfoAndMountinfoParsing(t *testing.T) {
	info := []byte("pos:\t0\nflags:\t02000002\nlink_type:\ttcx\nlink_id:\t17\nprog_tag:\tabc\nprog_id:\t42\n")
	if id, ok := fdinfoField(info, "link_id"); !ok || id != 17 {
		t.Errorf("link_id %d %v", id, ok)
	}
	if id, ok := fdinfoField(info, "prog_id"); !ok || id != 42 {
		t.Errorf("prog_id %d %v", id, ok)
	}
	if _, ok := fdinfoField(info, "map_id"); ok {
		t.Errorf("found a missing field")
	}
	if got := unescapeMount(`/tmp/a\040b`); got != "/tmp/a b" {
		t.Errorf("unescape: %q", got)
	}
}

func TestLoadObject_Errors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "x.txt")
	os.WriteFile(text, []byte("hello"), 0o644)
	progs := filepath.Join("..", "testdata", "progs")
	for _, c := range []struct{ path, prog, want string }{
		{filepath.Join(dir, "missing.o"), "", "does not exist"},
		{text, "", "is not an ELF object"},
		{filepath.Join(progs, "ops", "xdp_pass.o"), "", "is of type xdp"},
		{filepath.Join(progs, "qos_mark.o"), "other", `has no program "other"; it has qos_mark (sched_cls)`},
	} {
		if _, _, err := loadObject(c.path, c.prog); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("loadObject(%s, %q) = %v, want %q", c.path, c.prog, err, c.want)
		}
	}
	spec, name, err := loadObject(filepath.Join(progs, "ops", "pin_counter.o"), "")
	if err != nil || name != "pin_counter" || len(pinnedMaps(spec)) != 1 {
		t.Errorf("pin_counter: %v %q %v", err, name, pinnedMaps(spec))
	}
}

// TestDiagnose covers doctor's checks on a made-up namespace.
func TestDiagnose(t *testing.T) {
	ns := NetNS{Name: "t", Inode: 5}
	att := func(pos int, prog, link uint32) Attachment {
		a := Attachment{Position: pos, Program: Program{ID: prog}}
		if link != 0 {
			a.Link = &Link{ID: link}
		}
		return a
	}
	full := make([]Attachment, 60)
	for i := range full {
		full[i] = att(i, uint32(100+i), 0)
	}
	snap := &Snapshot{NetNS: ns, Devices: []Device{
		{Name: "eth0", Ifindex: 2, Ingress: Hook{TCX: []Attachment{att(0, 10, 3), att(1, 11, 0)},
			Classic: []ClassicFilter{{Priority: 1, Handle: 1, Program: Program{ID: 10}}}}},
		{Name: "eth1", Ifindex: 3, Egress: Hook{TCX: full}},
	}}
	records := NewRecords(t.TempDir())
	recs := []*Owner{
		{Kind: KindLink, LinkID: 3, ProgID: 10, NetNS: ns},                                        // live
		{Kind: KindLink, LinkID: 4, ProgID: 12, NetNS: ns, Device: "eth0"},                        // gone
		{Kind: KindPlain, ProgID: 11, NetNS: ns, Ifindex: 2, Direction: "ingress"},                // live
		{Kind: KindClassic, ProgID: 10, NetNS: ns, Ifindex: 2, Direction: "ingress", Priority: 1}, // live
		{Kind: KindClassic, ProgID: 9, NetNS: ns, Ifindex: 2, Direction: "ingress", Priority: 2},  // gone
		{Kind: KindLink, LinkID: 5, ProgID: 1, NetNS: NetNS{Inode: 6}},                            // another namespace
	}
	defunct := []DefunctLink{{ID: 8, ProgID: 13, Direction: "egress", Pins: []string{"/sys/fs/bpf/x"}}}
	r := diagnose(snap, defunct, records, recs, nil)
	got := map[string]int{}
	for _, f := range r.Findings {
		got[f.Check+"/"+f.Severity]++
	}
	want := map[string]int{
		CheckDefunctLink + "/" + SevProblem: 1, CheckDuplicate + "/" + SevProblem: 1, CheckTCXClassic + "/" + SevWarning: 1,
		CheckHookLimit + "/" + SevWarning: 1, CheckStaleRecord + "/" + SevProblem: 2,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d findings, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if len(got) != len(want) || r.Problems != 4 || r.Warnings != 2 {
		t.Errorf("findings %v, problems %d warnings %d", got, r.Problems, r.Warnings)
	}
	snap.Devices[1].Egress.TCX = append(full, att(60, 200, 0), att(61, 201, 0), att(62, 202, 0))
	r = diagnose(snap, nil, records, nil, nil)
	n := 0
	for _, f := range r.Findings {
		if f.Check == CheckHookLimit && f.Severity == SevProblem && strings.Contains(f.Message, "63 tcx programs") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("a full hook is not a problem: %+v", r.Findings)
	}
}
