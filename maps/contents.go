package maps

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf"
)

// putContents stores one MapSpec.Contents entry the way cilium/ebpf's Put
// marshals it: []byte and strings as they are, BinaryMarshalers through
// MarshalBinary, fixed-size values in native byte order.
func putContents(m Map, kv ebpf.MapKV) error {
	info := m.Info()
	key, err := marshal(kv.Key)
	if err != nil {
		return fmt.Errorf("key %v: %w", kv.Key, err)
	}
	value, err := marshal(kv.Value)
	if err != nil {
		return fmt.Errorf("value of key %v: %w", kv.Key, err)
	}
	if len(key) != int(info.KeySize) {
		return fmt.Errorf("key %v is %d bytes, map has %d: %w", kv.Key, len(key), info.KeySize, syscall.EINVAL)
	}
	return m.Update(key, value, UpdateAny)
}

func marshal(v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return nil, fmt.Errorf("nil: %w", syscall.EINVAL)
	case []byte:
		return v, nil
	case string:
		return []byte(v), nil
	case encoding.BinaryMarshaler:
		return v.MarshalBinary()
	}
	b, err := binary.Append(nil, binary.NativeEndian, v)
	if err != nil {
		return nil, fmt.Errorf("%T: %w: %w", v, err, syscall.EINVAL)
	}
	return b, nil
}
