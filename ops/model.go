package ops

import "time"

// SchemaShow and SchemaDoctor name the JSON documents of show and doctor.
const (
	SchemaShow   = "tcx.show/v1"
	SchemaDoctor = "tcx.doctor/v1"
)

// Snapshot is everything show reports about a namespace's devices.
type Snapshot struct {
	Schema  string   `json:"schema"`
	NetNS   NetNS    `json:"netns"`
	Devices []Device `json:"devices"`
	// Notes are facts about how the snapshot was taken (a hook that could
	// not be read, a fallback in use).
	Notes []string `json:"notes,omitempty"`
}

// NetNS names a network namespace: how it was given and its inode.
type NetNS struct {
	Name  string `json:"name"`
	Inode uint64 `json:"inode"`
}

// Device is one network device and its BPF hooks.
type Device struct {
	Ifindex int    `json:"ifindex"`
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Ingress Hook   `json:"ingress"`
	Egress  Hook   `json:"egress"`
	XDP     *XDP   `json:"xdp,omitempty"`
	// Netkit holds a netkit primary device's two chains (primary, peer).
	Netkit *Netkit `json:"netkit,omitempty"`
}

// Hook returns the device's hook in the direction ("ingress"/"egress").
func (d *Device) Hook(dir string) *Hook {
	if dir == "egress" {
		return &d.Egress
	}
	return &d.Ingress
}

// Hook is one direction of a device: the tcx chain, which runs first, and
// the classic cls_bpf filters of clsact, which run after it only when
// every tcx program returned TCX_NEXT (or there is none).
type Hook struct {
	// Revision is the tcx chain's revision (BPF_PROG_QUERY); 0 when the
	// hook never had a tcx program.
	Revision uint64       `json:"revision"`
	TCX      []Attachment `json:"tcx"`
	// Qdisc is the classic qdisc of the hook ("clsact", "ingress", "").
	Qdisc   string          `json:"qdisc,omitempty"`
	Classic []ClassicFilter `json:"classic"`
}

// Attachment is one position of a tcx (or netkit) chain.
type Attachment struct {
	Position int     `json:"position"`
	Program  Program `json:"program"`
	// Link is the link holding the program; nil for a plain attachment
	// (BPF_PROG_ATTACH), which stays until someone detaches it.
	Link *Link `json:"link,omitempty"`
	// Owner is tcx's ownership record; nil when the attachment was not
	// made by tcx, which Foreign says.
	Owner   *Owner `json:"owner,omitempty"`
	Foreign bool   `json:"foreign"`
}

// Program is what the kernel tells about a loaded program.
type Program struct {
	ID       uint32    `json:"id"`
	Name     string    `json:"name"`
	Tag      string    `json:"tag"`
	Type     string    `json:"type"`
	LoadedAt time.Time `json:"loaded_at"`
	// Pins are bpffs paths that pin the program itself; Holders the
	// processes with an fd of it.
	Pins    []string `json:"pins,omitempty"`
	Holders []Holder `json:"holders,omitempty"`
}

// Link is a BPF link: its ID, the pins and the processes keeping it alive.
type Link struct {
	ID      uint32   `json:"id"`
	Pins    []string `json:"pins"`
	Holders []Holder `json:"holders"`
}

// Holder is a process with an fd of a BPF object open.
type Holder struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	FD   int    `json:"fd"`
}

// ClassicFilter is a cls_bpf filter of a clsact hook, in run order.
type ClassicFilter struct {
	Priority     uint16  `json:"priority"`
	Handle       uint32  `json:"handle"`
	DirectAction bool    `json:"direct_action"`
	Name         string  `json:"name"`
	Program      Program `json:"program"`
	Owner        *Owner  `json:"owner,omitempty"`
	Foreign      bool    `json:"foreign"`
}

// XDP is a device's XDP program.
type XDP struct {
	Mode    string  `json:"mode"` // driver, generic, offload, multi
	Program Program `json:"program"`
}

// Netkit is the two chains of a netkit pair, read-only.
type Netkit struct {
	Primary Chain `json:"primary"`
	Peer    Chain `json:"peer"`
}

// Chain is a multi-program chain other than tcx's.
type Chain struct {
	Revision uint64       `json:"revision"`
	Programs []Attachment `json:"programs"`
}

// Owner is the ownership record tcx keeps for every attachment it makes.
type Owner struct {
	Kind      string `json:"kind"` // KindLink, KindPlain, KindClassic
	LinkID    uint32 `json:"link_id,omitempty"`
	ProgID    uint32 `json:"prog_id"`
	NetNS     NetNS  `json:"netns"`
	Device    string `json:"device"`
	Ifindex   int    `json:"ifindex"`
	Direction string `json:"direction"`
	Priority  uint16 `json:"priority,omitempty"` // classic filters
	Handle    uint32 `json:"handle,omitempty"`
	// Pin is the link's pin; MapPins the map pins the attach created.
	Pin     string    `json:"pin,omitempty"`
	MapPins []string  `json:"map_pins,omitempty"`
	Object  string    `json:"object"`
	SHA256  string    `json:"sha256"`
	Program string    `json:"program"`
	Command []string  `json:"command"`
	User    string    `json:"user"`
	UID     int       `json:"uid"`
	PID     int       `json:"pid"`
	Time    time.Time `json:"time"`
	Label   string    `json:"label,omitempty"`
}

// Kinds of attachment an Owner records.
const (
	KindLink    = "link"    // a tcx link (pinned)
	KindPlain   = "plain"   // a tcx attachment without a link
	KindClassic = "classic" // a clsact cls_bpf filter (legacy fallback)
)
