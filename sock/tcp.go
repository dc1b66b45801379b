package sock

import "encoding/binary"

// TCPImageSize is sizeof(struct bpf_tcp_sock).
const TCPImageSize = 112

// Offsets of the struct bpf_tcp_sock fields (include/uapi/linux/bpf.h).
const (
	OffSndCwnd         = 0
	OffSrttUs          = 4
	OffRttMin          = 8
	OffSndSsthresh     = 12
	OffRcvNxt          = 16
	OffSndNxt          = 20
	OffSndUna          = 24
	OffMssCache        = 28
	OffEcnFlags        = 32
	OffRateDelivered   = 36
	OffRateIntervalUs  = 40
	OffPacketsOut      = 44
	OffRetransOut      = 48
	OffTotalRetrans    = 52
	OffSegsIn          = 56
	OffDataSegsIn      = 60
	OffSegsOut         = 64
	OffDataSegsOut     = 68
	OffLostOut         = 72
	OffSackedOut       = 76
	OffBytesReceived   = 80 // __u64
	OffBytesAcked      = 88 // __u64
	OffDsackDups       = 96
	OffDelivered       = 100
	OffDeliveredCE     = 104
	OffIcskRetransmits = 108
)

// TCPState is what bpf_tcp_sock shows of a TCP socket (struct
// bpf_tcp_sock): the kernel's struct tcp_sock counters, as a table's user
// knows them (for a real socket, most are in TCP_INFO). The zero value is
// a socket as tcp_init_sock leaves it, what a listener shows: a
// congestion window of 10 (TCP_INIT_CWND), no RTT sample (rtt_min ~0),
// an infinite slow-start threshold and the default MSS of 536.
type TCPState struct {
	SndCwnd, SrttUs, RttMin, SndSsthresh     uint32
	RcvNxt, SndNxt, SndUna                   uint32
	MssCache, EcnFlags                       uint32
	RateDelivered, RateIntervalUs            uint32
	PacketsOut, RetransOut, TotalRetrans     uint32
	SegsIn, DataSegsIn, SegsOut, DataSegsOut uint32
	LostOut, SackedOut                       uint32
	BytesReceived, BytesAcked                uint64
	DsackDups, Delivered, DeliveredCE        uint32
	IcskRetransmits                          uint32
}

// TCPImage is the struct bpf_tcp_sock of a TCP socket, nil for another.
// The engine maps it read-only; it must not be changed.
func (s *Socket) TCPImage() []byte {
	if s.Protocol != ProtoTCP {
		return nil
	}
	return s.tcpImg[:]
}

// freshTCP is tcp_init_sock's state.
var freshTCP = TCPState{SndCwnd: 10, RttMin: ^uint32(0), SndSsthresh: 0x7fffffff, MssCache: 536}

func (s *Socket) layoutTCP() {
	b, t := s.tcpImg[:], &s.TCP
	if *t == (TCPState{}) {
		f := freshTCP
		t = &f
	}
	le := binary.LittleEndian
	for off, v := range map[int]uint32{
		OffSndCwnd: t.SndCwnd, OffSrttUs: t.SrttUs, OffRttMin: t.RttMin, OffSndSsthresh: t.SndSsthresh,
		OffRcvNxt: t.RcvNxt, OffSndNxt: t.SndNxt, OffSndUna: t.SndUna, OffMssCache: t.MssCache,
		OffEcnFlags: t.EcnFlags, OffRateDelivered: t.RateDelivered, OffRateIntervalUs: t.RateIntervalUs,
		OffPacketsOut: t.PacketsOut, OffRetransOut: t.RetransOut, OffTotalRetrans: t.TotalRetrans,
		OffSegsIn: t.SegsIn, OffDataSegsIn: t.DataSegsIn, OffSegsOut: t.SegsOut, OffDataSegsOut: t.DataSegsOut,
		OffLostOut: t.LostOut, OffSackedOut: t.SackedOut, OffDsackDups: t.DsackDups,
		OffDelivered: t.Delivered, OffDeliveredCE: t.DeliveredCE, OffIcskRetransmits: t.IcskRetransmits,
	} {
		le.PutUint32(b[off:], v)
	}
	le.PutUint64(b[OffBytesReceived:], t.BytesReceived)
	le.PutUint64(b[OffBytesAcked:], t.BytesAcked)
}
