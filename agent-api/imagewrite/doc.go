// Package imagewrite writes an OS image, fetched over HTTP(S), onto the
// machine's root disk: the deploy agent's equivalent of ironic-python-agent's
// prepare_image, verified and streamed.
//
// [Write] is the whole of it: it checks the image's checksum in every form
// Ironic hands to IPA, detects the image's format by its content, writes it
// to a block device (or a regular file standing in for one), and leaves the
// disk either holding the verified image or, after a checksum mismatch, zeros
// where the image was written.
//
// # Streaming
//
// Raw images and compressed raw images (gzip, zstd, bzip2) are written in one
// pass of three stages, each in its own goroutine: the download reads the
// network into a few 1 MiB buffers; the producer hashes that byte stream
// (the one step that cannot be split), decompresses it and fills 4 MiB
// buffers from a pool of four; the calling goroutine writes them to the
// disk. Memory stays bounded (about 25 MiB whatever the image's size) and
// the network, the hash and the disk work at the same time. The checksum is
// only known at the end of such a pass: on a mismatch every byte written is
// zeroed again; after any other failure once writing began (a download
// that cannot be resumed, a cancellation, an image found too large), the
// first MiB written is zeroed, so that the partial, unverified image has no
// partition table or boot code to boot from. The writer asks the kernel to start writing back each
// 32 MiB window as soon as it is written, waits for the window two behind
// and drops it from the page cache, so dirty and cached pages stay bounded
// on a machine with little memory and the final fsync is short.
//
// Downloads have deadlines on the answer's headers and a stall timeout (no
// bytes for [Options.StallTimeout]), never one on the whole transfer. A
// broken download is resumed with a Range request from the offset reached,
// guarded by If-Range, when the server supports ranges; the hash and the
// decompressor carry on over the same byte stream.
//
// # qcow2
//
// A qcow2 image cannot be converted from a sequential stream: its cluster
// tables point anywhere in the file. Staging the file needs room a ramdisk
// does not have, so this package reads qcow2 images through HTTP range
// requests instead, in two passes:
//
//  1. A verification pass downloads the file sequentially, checks its
//     checksum and records a SHA-256 of every 2 MiB block. Nothing is written
//     before the checksum matches.
//  2. The conversion reads the image through an [io.ReaderAt] over range
//     requests (a bounded block cache with read-ahead, If-Match on the ETag
//     seen) and checks each block fetched against the hash recorded in pass
//     1, so the bytes converted are the bytes verified even if the server
//     changes the file or ignores If-Match.
//
// The price is downloading the image's allocated data twice; the gain is a
// qcow2 deployment with no staging and no qemu-img. A server without range
// support gets [ErrRangesUnsupported] before anything is written: serve raw
// (possibly zstd-compressed) images from such servers.
//
// Guest ranges the image leaves unallocated, or marks as zero, must read as
// zeros on the disk: they are punched out of a regular file
// (FALLOC_FL_PUNCH_HOLE) and zeroed on a block device with BLKZEROOUT (which
// the kernel turns into WRITE ZEROES or UNMAP where the device guarantees
// zeros, and into written zeros otherwise); where neither works zeros are
// written. The same method wipes the disk after a checksum mismatch.
// BLKDISCARD is not used: a discard does not guarantee that the blocks read
// back as zeros.
//
// qcow2 images with a backing file or an external data file are refused (the
// file name is a path the image's author chooses), and so are encrypted
// images, images marked corrupt, images with extended L2 entries (the reader
// supports them only experimentally) and headers whose tables are out of
// bounds. Compressed clusters (zlib or zstd) are supported.
//
// # Checksums
//
// As ironic-python-agent (ironic_python_agent/extensions/standby.py,
// ImageDownload): image_os_hash_algo and image_os_hash_value take precedence
// when the algorithm is supported; otherwise image_checksum is used, in any
// of its forms: bare hex, whose algorithm is told by its length (32 md5, 64
// sha256, 128 sha512; other lengths are refused, as IPA does), "algo:hex"
// (as Ironic's checksum_utils accepts), or an http(s) URL of a checksums
// file, which holds either the hash alone or "hash  name" lines (GNU and BSD
// styles) where the line for the image's file name is chosen. The hash value
// may be such a URL too. Comparison ignores case. An image with no checksum
// is refused, as both IPA and Ironic refuse it, and a malformed checksum is
// refused before anything is downloaded or written.
//
// # Formats
//
// The format is detected from the content (magic bytes); the image's
// disk_format is a hint that is logged when it disagrees. Images that are
// not recognised are written as raw, as Ironic writes raw images. Refused:
// other virtual-disk formats (vmdk, vhd, vhdx, vdi, qcow version 1), LUKS
// containers, xz (the only pure-Go decoder sizes its dictionary from the
// stream, unbounded), a qcow2 image inside a compressed stream, and ISO 9660
// images unless disk_format says raw (a hybrid ISO boots from a disk when the
// operator says so; IPA also refuses ISO otherwise).
package imagewrite
