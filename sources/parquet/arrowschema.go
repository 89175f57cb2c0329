package parquet

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// checkStoredSchema bounds-checks the Arrow schema a file may store in its
// ARROW:schema metadata (an IPC schema message, base64) before pqarrow
// decodes it. arrow-go sizes slices by vector lengths read from the
// flatbuffer without checking them against the buffer, so a corrupt length
// makes it allocate hundreds of GiB and the process dies (not a panic
// that can be recovered). The check walks every vector arrow-go allocates
// by (schema fields, field children, custom metadata, union type ids) and
// refuses a length that does not fit in the message; what it does not
// reach is left to the decoder, whose other failures are panics or errors.
func checkStoredSchema(kv metadata.KeyValueMetadata) error {
	v := kv.FindValue("ARROW:schema")
	if v == nil {
		return nil
	}
	var data []byte
	var err error
	if len(*v)%4 == 0 {
		data, err = base64.StdEncoding.DecodeString(*v)
	}
	if len(data) == 0 || err != nil {
		if data, err = base64.RawStdEncoding.DecodeString(*v); err != nil {
			return fmt.Errorf("ARROW:schema metadata: %w", err)
		}
	}
	// IPC message: [0xFFFFFFFF] int32 length, then the flatbuffer.
	if len(data) >= 4 && binary.LittleEndian.Uint32(data) == 0xFFFFFFFF {
		data = data[4:]
	}
	if len(data) < 4 {
		return fmt.Errorf("ARROW:schema metadata: message of %d bytes", len(data))
	}
	n := int64(int32(binary.LittleEndian.Uint32(data)))
	if n < 8 || n > int64(len(data)-4) {
		return fmt.Errorf("ARROW:schema metadata: message length %d in %d bytes", n, len(data)-4)
	}
	c := &fbCheck{buf: data[4 : 4+n]}
	c.message()
	if c.err != nil {
		return fmt.Errorf("ARROW:schema metadata: %w", c.err)
	}
	return nil
}

// fbCheck walks a flatbuffer, checking offsets and vector lengths; the
// first problem is kept in err and stops the walk.
type fbCheck struct {
	buf   []byte
	err   error
	nodes int
}

func (c *fbCheck) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

func (c *fbCheck) u32(at int64) (uint32, bool) {
	if at < 0 || at+4 > int64(len(c.buf)) {
		c.fail("offset %d outside the %d-byte message", at, len(c.buf))
		return 0, false
	}
	return binary.LittleEndian.Uint32(c.buf[at:]), true
}

// field returns the position of field voff (a vtable offset: 4, 6, ...)
// of the table at pos, or -1 when the table does not have it.
func (c *fbCheck) field(pos int64, voff int64) int64 {
	soff, ok := c.u32(pos)
	if !ok {
		return -1
	}
	vt := pos - int64(int32(soff))
	if vt < 0 || vt+4 > int64(len(c.buf)) {
		c.fail("vtable at %d outside the message", vt)
		return -1
	}
	vsize := int64(binary.LittleEndian.Uint16(c.buf[vt:]))
	if voff+2 > vsize || vt+vsize > int64(len(c.buf)) {
		return -1
	}
	fo := int64(binary.LittleEndian.Uint16(c.buf[vt+voff:]))
	if fo == 0 {
		return -1
	}
	return pos + fo
}

// ref follows the offset stored at field position at (a table, vector or
// string), or returns -1.
func (c *fbCheck) ref(at int64) int64 {
	if at < 0 {
		return -1
	}
	off, ok := c.u32(at)
	if !ok {
		return -1
	}
	return at + int64(off)
}

// vector checks the vector referenced by field voff of the table at pos,
// of elements elem bytes long, and returns its element positions' start
// and length (-1, 0 when absent).
func (c *fbCheck) vector(pos, voff, elem int64) (int64, int64) {
	v := c.ref(c.field(pos, voff))
	if v < 0 {
		return -1, 0
	}
	n, ok := c.u32(v)
	if !ok {
		return -1, 0
	}
	if int64(n)*elem > int64(len(c.buf))-v-4 {
		c.fail("vector of %d elements at %d overruns the %d-byte message", n, v, len(c.buf))
		return -1, 0
	}
	return v + 4, int64(n)
}

// tables calls fn with every table of the vector of offsets at field voff.
func (c *fbCheck) tables(pos, voff int64, fn func(int64)) {
	start, n := c.vector(pos, voff, 4)
	for i := int64(0); i < n && c.err == nil; i++ {
		if c.nodes++; c.nodes > len(c.buf) {
			c.fail("too many tables")
			return
		}
		fn(c.ref(start + 4*i))
	}
}

// Vtable offsets of the Arrow IPC tables (Message.fbs, Schema.fbs).
const (
	messageHeader         = 8
	messageCustomMetadata = 12
	schemaFields          = 6
	schemaCustomMetadata  = 8
	schemaFeatures        = 10
	fieldTypeType         = 8
	fieldType             = 10
	fieldChildren         = 14
	fieldCustomMetadata   = 16
	unionTypeIDs          = 6
	typeUnion             = 14
)

func (c *fbCheck) message() {
	root, ok := c.u32(0)
	if !ok {
		return
	}
	msg := int64(root)
	c.tables(msg, messageCustomMetadata, func(int64) {})
	schema := c.ref(c.field(msg, messageHeader))
	if schema < 0 || c.err != nil {
		c.fail("no schema in the message")
		return
	}
	c.tables(schema, schemaCustomMetadata, func(int64) {})
	c.vector(schema, schemaFeatures, 8)
	c.tables(schema, schemaFields, func(f int64) { c.arrowField(f, 0) })
}

func (c *fbCheck) arrowField(f int64, depth int) {
	if f < 0 {
		c.fail("missing field")
		return
	}
	if depth > 64 {
		c.fail("fields nested deeper than 64")
		return
	}
	c.tables(f, fieldCustomMetadata, func(int64) {})
	if tt := c.field(f, fieldTypeType); tt >= 0 && tt < int64(len(c.buf)) && c.buf[tt] == typeUnion {
		if u := c.ref(c.field(f, fieldType)); u >= 0 {
			c.vector(u, unionTypeIDs, 4)
		}
	}
	c.tables(f, fieldChildren, func(ch int64) { c.arrowField(ch, depth+1) })
}
