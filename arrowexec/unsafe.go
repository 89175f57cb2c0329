package arrowexec

import (
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
)

// Views of Arrow's typed temporal slices as their physical integer types, so
// kernels need one loop per physical width. No copies.

func timestampsAsInt64(v []arrow.Timestamp) []int64 {
	return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(v))), len(v))
}

func date32AsInt32(v []arrow.Date32) []int32 {
	return unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(v))), len(v))
}

func date64AsInt64(v []arrow.Date64) []int64 {
	return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(v))), len(v))
}
