package ops

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultStateDir is where ownership records live unless --state-dir or
// TCX_STATE_DIR says otherwise: under /run, a tmpfs that empties at boot,
// exactly when the kernel's program and link IDs the records name start
// again.
const DefaultStateDir = "/run/tcx"

// Records is the directory of ownership records: one JSON file (an Owner)
// per attachment tcx made, in <dir>/owners.
type Records struct{ dir string }

// NewRecords uses dir (created on the first Put).
func NewRecords(dir string) *Records { return &Records{dir: filepath.Join(dir, "owners")} }

// key is the file name of a record: link-<ID> for links, else the hook
// and, for classic filters, the priority.
func (o *Owner) key() string {
	switch o.Kind {
	case KindLink:
		return fmt.Sprintf("link-%d.json", o.LinkID)
	case KindClassic:
		return fmt.Sprintf("classic-%d-%d-%s-%d.json", o.NetNS.Inode, o.Ifindex, o.Direction, o.Priority)
	}
	return fmt.Sprintf("plain-%d-%d-%s-%d.json", o.NetNS.Inode, o.Ifindex, o.Direction, o.ProgID)
}

// Put writes the record atomically (rename), replacing an older one.
func (r *Records) Put(o *Owner) error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return fmt.Errorf("ownership record: %w", err)
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return fmt.Errorf("ownership record: %w", err)
	}
	tmp, err := os.CreateTemp(r.dir, ".tmp-")
	if err != nil {
		return fmt.Errorf("ownership record: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(r.dir, o.key()))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ownership record: %w", err)
	}
	return nil
}

// Writable checks that records can be written, so that a request fails
// before it changes anything rather than having to undo its change.
func (r *Records) Writable() error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return fmt.Errorf("ownership record: %w", err)
	}
	f, err := os.CreateTemp(r.dir, ".probe-")
	if err != nil {
		return fmt.Errorf("ownership record: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// Delete removes the record (a missing one is no error).
func (r *Records) Delete(o *Owner) error {
	if err := os.Remove(filepath.Join(r.dir, o.key())); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ownership record: %w", err)
	}
	return nil
}

// All reads every record, sorted by file name; unreadable files are
// reported in bad (path: error) and skipped.
func (r *Records) All() (recs []*Owner, bad []string) {
	names, err := filepath.Glob(filepath.Join(r.dir, "*.json"))
	if err != nil {
		return nil, nil
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(n)
		var o Owner
		if err == nil {
			err = json.Unmarshal(b, &o)
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", n, err))
			continue
		}
		recs = append(recs, &o)
	}
	return recs, bad
}

// Path is the file of a record.
func (r *Records) Path(o *Owner) string { return filepath.Join(r.dir, o.key()) }

// index finds records by what show sees: link ID, or netns+hook+program.
type index struct {
	links   map[uint32]*Owner
	plain   map[string]*Owner
	classic map[string]*Owner
}

func newIndex(recs []*Owner) index {
	ix := index{links: map[uint32]*Owner{}, plain: map[string]*Owner{}, classic: map[string]*Owner{}}
	for _, o := range recs {
		switch o.Kind {
		case KindLink:
			ix.links[o.LinkID] = o
		case KindPlain:
			ix.plain[o.key()] = o
		case KindClassic:
			ix.classic[o.key()] = o
		}
	}
	return ix
}

// link is the record of a link, if it still runs the recorded program.
func (ix index) link(id, prog uint32) *Owner {
	if o := ix.links[id]; o != nil && o.ProgID == prog {
		return o
	}
	return nil
}

func (ix index) plainAt(ns uint64, ifindex int, dir string, prog uint32) *Owner {
	return ix.plain[(&Owner{Kind: KindPlain, NetNS: NetNS{Inode: ns}, Ifindex: ifindex, Direction: dir, ProgID: prog}).key()]
}

func (ix index) classicAt(ns uint64, ifindex int, dir string, prio uint16, prog uint32) *Owner {
	o := ix.classic[(&Owner{Kind: KindClassic, NetNS: NetNS{Inode: ns}, Ifindex: ifindex, Direction: dir, Priority: prio}).key()]
	if o != nil && o.ProgID == prog {
		return o
	}
	return nil
}

// newOwner fills the who/when/what of a record.
func newOwner(kind, object, program string, command []string, label string, now time.Time) (*Owner, error) {
	sum, err := fileSHA256(object)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(object)
	if err != nil {
		return nil, err
	}
	o := &Owner{Kind: kind, Object: abs, SHA256: sum, Program: program, Command: command,
		UID: os.Getuid(), PID: os.Getpid(), Time: now.UTC().Truncate(time.Second), Label: label}
	o.User = strconv.Itoa(o.UID)
	if u, err := user.LookupId(o.User); err == nil {
		o.User = u.Username
	}
	if s := os.Getenv("SUDO_USER"); s != "" && o.UID == 0 {
		o.User += " (sudo by " + s + ")"
	}
	return o, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// shortCommand is the recorded command line for display, quoted where a
// shell would need it.
func shortCommand(cmd []string) string {
	out := make([]string, len(cmd))
	for i, a := range cmd {
		out[i] = a
		if a == "" || strings.ContainsAny(a, " \t\n'\"$`\\*?;&|<>()") {
			out[i] = strconv.Quote(a)
		}
	}
	return strings.Join(out, " ")
}
