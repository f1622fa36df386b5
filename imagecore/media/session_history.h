// The history of an image whose first session sits at LBA 0 (genisoimage, mkisofs, most
// distribution ISOs), kept by discfs as it grows it.
//
// libisoburn grows such an image by writing each new session after the old ones and copying
// its volume descriptors to LBA 0..31. That copy overwrites the first session's own
// descriptors (and whatever of its directories lay in blocks 16..31), and no chain from LBA 32
// leads back to it, so neither xorriso nor the kernel can show the older sessions. discfs
// therefore writes, on its first commit onto such an image, an unchanged copy of the first
// session's tree (the "copy session": a new directory tree over the same file extents), and
// records in the Application Use field of every session's primary volume descriptor
// (ECMA-119 8.4.32) where that session starts and which session it was grown from. This file
// encodes that record and follows it back from the descriptors at LBA 16.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "imagecore/base/source.h"
#include "imagecore/media/sessions.h"

namespace imagecore {

// What discfs records in a session's PVD (Application Use, bytes 883..1394).
struct HistoryRecord {
  uint64_t start = 0;     // this session's first block
  uint64_t previous = 0;  // first block of the session it was grown from
  // Set only on the copy session: the length in blocks of the LBA-0 session it stands for
  // (its `previous` is 0).
  uint64_t copy_of_blocks = 0;
  bool is_copy() const { return copy_of_blocks != 0; }
  bool operator==(const HistoryRecord&) const = default;
};

// Bytes of the encoded record; the rest of the 512-byte field stays zero.
inline constexpr size_t kHistoryRecordBytes = 64;

// "DISCFS-HISTORY", a version byte (1), flags (bit 0: copy session), then little-endian
// 64-bit start, previous and copy_of_blocks.
std::array<char, kHistoryRecordBytes> encode_history_record(const HistoryRecord& r);

// The record in a PVD's Application Use bytes, or nothing when they hold none (or another
// version, or a record that contradicts itself).
std::optional<HistoryRecord> decode_history_record(std::span<const std::byte> app_use);

// The session table of a grown LBA-0 image, when the descriptors at LBA 16 carry a valid
// record: every session found by walking the records back, oldest first, the copy session not
// listed and session 1 listed at LBA 0 with its own length and read through the copy's tree
// (SessionEntry::tree_lba). Each step is checked: a record must point strictly backwards, to
// a 32-block boundary inside the image, where a PVD carries a record naming that start. A
// walk that breaks keeps what it found and says so in the note; at most kMaxSessions.
// Nothing when LBA 16 has no valid record for its own session (not grown by discfs, or grown
// since by another program). `total` is the volume space size of the PVD at LBA 16.
std::optional<SessionTable> read_session_history(const Source& src, uint64_t total);

}  // namespace imagecore
