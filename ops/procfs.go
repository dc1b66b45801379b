package ops

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DefaultBPFFS is where bpffs is conventionally mounted.
const DefaultBPFFS = "/sys/fs/bpf"

// bpffsMounts lists the mount points of every bpffs this process sees
// (/proc/self/mountinfo), each once.
func bpffsMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID parent major:minor root mountpoint options... - fstype source super
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 1 || tail[0] != "bpf" {
			continue
		}
		mp := unescapeMount(fields[4])
		if !seen[mp] {
			seen[mp] = true
			out = append(out, mp)
		}
	}
	sort.Strings(out)
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// walkPins calls fn for every file under the roots (pins; bpffs holds
// nothing else), skipping what cannot be read.
func walkPins(roots []string, fn func(path string)) {
	for _, root := range roots {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if !d.IsDir() {
				fn(path)
			}
			return nil
		})
	}
}

// holders maps link and program IDs to the processes holding an fd of
// them, read from /proc/*/fdinfo (the kernel writes link_id: and prog_id:
// lines there for BPF fds).
type holders struct {
	links, progs map[uint32][]Holder
}

func scanHolders() holders {
	h := holders{links: map[uint32][]Holder{}, progs: map[uint32][]Holder{}}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", p.Name())
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		var comm string
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			// Link fds read anon_inode:bpf_link from their creation and
			// anon_inode:bpf-link when opened from a pin.
			if err != nil || !strings.HasPrefix(target, "anon_inode:bpf") || strings.HasSuffix(target, "map") {
				continue
			}
			n, _ := strconv.Atoi(fd.Name())
			info, err := os.ReadFile(filepath.Join(dir, "fdinfo", fd.Name()))
			if err != nil {
				continue
			}
			if comm == "" {
				c, _ := os.ReadFile(filepath.Join(dir, "comm"))
				comm = strings.TrimSpace(string(c))
			}
			hd := Holder{PID: pid, Comm: comm, FD: n}
			// A link's fdinfo names its program too; only the link holds it.
			if id, ok := fdinfoField(info, "link_id"); ok {
				h.links[id] = append(h.links[id], hd)
			} else if id, ok := fdinfoField(info, "prog_id"); ok {
				h.progs[id] = append(h.progs[id], hd)
			}
		}
	}
	return h
}

func fdinfoField(info []byte, name string) (uint32, bool) {
	for _, line := range strings.Split(string(info), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && k == name {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			return uint32(n), err == nil
		}
	}
	return 0, false
}
