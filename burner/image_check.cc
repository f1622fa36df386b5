// `discfs verify`'s checks: session MD5 tags (as xorriso -check_media does), file MD5s (as
// xorriso -check_md5_r does) and published digests (OpenSSL).
#include "burner/image_check.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "burner/libs.h"
#include "burner/md5_tags.h"
#include "burner/target.h"
#include "imagecore/base/error.h"
#include "imagecore/base/source.h"
#include "imagecore/iso9660/volume.h"
#include "imagecore/media/sessions.h"
#include "imagecore/udf/udf_fs.h"

namespace burner {
namespace {

constexpr uint64_t kChunkBlocks = 256;  // 512 KiB reads

// An MD5 context (OpenSSL: faster than libisofs's own, and the tags are plain MD5).
class Md5Ctx {
 public:
  Md5Ctx() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_md5(), nullptr) != 1)
      throw std::bad_alloc();
  }
  void add(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  // The MD5 of what was added so far; the context goes on.
  std::array<char, 16> peek() const {
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> copy(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!copy || EVP_MD_CTX_copy_ex(copy.get(), ctx_.get()) != 1)
      throw std::bad_alloc();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(copy.get(), md, &len);
    std::array<char, 16> out{};
    std::memcpy(out.data(), md, out.size());
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

bool same(const std::array<char, 16>& a, const std::array<char, 16>& b) {
  return std::memcmp(a.data(), b.data(), 16) == 0;
}

std::string blocks_text(uint64_t first, uint64_t end) {
  return "blocks " + std::to_string(first) + "-" + std::to_string(end - 1);
}

// Checks one session's tag chain and session MD5.
SessionTagCheck check_session(const imagecore::Source& src,
                              const imagecore::SessionEntry& s,
                              const CheckProgress& progress) {
  SessionTagCheck r;
  r.number = s.number;
  r.start_lba = s.start_lba;
  const std::string where = "session " + std::to_string(s.number);
  const BlockReader read = [&src](uint64_t lba, std::span<char, 2048> out) {
    if ((lba + 1) * kBlockSize > src.size())
      return false;
    src.read(lba * kBlockSize, std::as_writable_bytes(out));
    return true;
  };
  try {
    const std::optional<Md5Tag> sb = find_superblock_tag(read, s.tree_start());
    if (!sb) {
      r.state = SessionTagCheck::State::NoTags;
      return r;
    }
    r.state = SessionTagCheck::State::Mismatch;
    std::optional<Md5Tag> tree, session;
    if (sb->next > sb->lba)
      tree = read_md5_tag(read, sb->next, Md5TagType::Tree);
    if (!tree) {
      r.detail = "no directory tree MD5 tag at block " + std::to_string(sb->next) +
                 ", where the superblock tag at block " + std::to_string(sb->lba) + " points";
      return r;
    }
    if (tree->next > tree->lba)
      session = read_md5_tag(read, tree->next, Md5TagType::Session);
    if (!session) {
      r.detail = "no session MD5 tag at block " + std::to_string(tree->next) +
                 ", where the tree tag at block " + std::to_string(tree->lba) + " points";
      return r;
    }
    const uint64_t first = session->range_start;
    const uint64_t end = first + session->range_size;  // == session->lba
    if (sb->range_start != first || tree->range_start != first || end != session->lba ||
        sb->lba < first || tree->lba < sb->lba || end < tree->lba) {
      r.detail = "its MD5 tags cover inconsistent ranges";
      return r;
    }
    r.blocks = session->range_size;
    r.range_start = first;
    // The tags are cumulative from the session's first block: the superblock tag covers the
    // volume descriptors, the tree tag adds the directory tree, the session tag the file data.
    // Checking each where it lies says which part is damaged.
    Md5Ctx md5;
    std::vector<std::byte> buf(kChunkBlocks * kBlockSize);
    const std::string phase = where + " MD5";
    uint64_t lba = first;
    std::optional<std::string> first_bad;
    const auto check_at = [&](uint64_t at, const Md5Tag& tag, const char* part,
                              uint64_t part_start) {
      if (lba == at && !first_bad && !same(md5.peek(), tag.md5))
        first_bad = std::string(part) + " (" + blocks_text(part_start, at) + ")";
    };
    while (lba < end) {
      uint64_t stop = end;
      for (const uint64_t at : {sb->lba, tree->lba})
        if (at > lba && at < stop)
          stop = at;
      const uint64_t n = std::min(stop - lba, kChunkBlocks);
      const std::span<std::byte> part(buf.data(), n * kBlockSize);
      src.read(lba * kBlockSize, part);
      md5.add(part.data(), part.size());
      lba += n;
      check_at(sb->lba, *sb, "the volume descriptors", first);
      check_at(tree->lba, *tree, "the directory tree", sb->lba);
      if (progress)
        progress(phase, (lba - first) * kBlockSize, (end - first) * kBlockSize);
    }
    if (!first_bad && !same(md5.peek(), session->md5))
      first_bad = "the file data (" + blocks_text(tree->lba, end) + ")";
    if (first_bad) {
      r.detail = "the MD5 of " + blocks_text(first, end) + " does not match its tag at block " +
                 std::to_string(session->lba) + ": the damage is in " + *first_bad;
      return r;
    }
    r.state = SessionTagCheck::State::Ok;
  } catch (const imagecore::Error& e) {
    r.state = SessionTagCheck::State::Unreadable;
    r.detail = e.what();
  }
  return r;
}

struct Image {
  IsoImage* p = nullptr;
  ~Image() {
    if (p)
      iso_image_unref(p);
  }
};
struct ReadOpts {
  IsoReadOpts* p = nullptr;
  ~ReadOpts() {
    if (p)
      iso_read_opts_free(p);
  }
};
struct DataSource {
  IsoDataSource* p = nullptr;
  ~DataSource() {
    if (p)
      iso_data_source_unref(p);
  }
};

struct FileItem {
  IsoFile* file;
  std::string path;
  std::array<char, 16> md5;
};

// The files of the tree below `dir` that have a recorded MD5, in tree order; counts the others.
void collect_files(IsoImage* image,
                   IsoDir* dir,
                   const std::string& path,
                   std::vector<FileItem>* out,
                   uint64_t* without_md5) {
  IsoDirIter* iter = nullptr;
  if (iso_dir_get_children(dir, &iter) != 1)
    return;
  std::unique_ptr<IsoDirIter, void (*)(IsoDirIter*)> guard(iter, iso_dir_iter_free);
  IsoNode* node = nullptr;
  while (iso_dir_iter_next(iter, &node) == 1) {
    const std::string child = path + "/" + iso_node_get_name(node);
    if (ISO_NODE_IS_DIR(node)) {
      collect_files(image, reinterpret_cast<IsoDir*>(node), child, out, without_md5);
    } else if (ISO_NODE_IS_FILE(node)) {
      FileItem f{reinterpret_cast<IsoFile*>(node), child, {}};
      if (iso_file_get_md5(image, f.file, f.md5.data(), 0) == 1)
        out->push_back(std::move(f));
      else
        ++*without_md5;
    }
  }
}

// Reads every file of one session's tree that has a recorded MD5 and compares.
void check_session_files(const std::string& path,
                         const imagecore::SessionEntry& s,
                         const CheckProgress& progress,
                         Md5Check* r) {
  const std::string where = "session " + std::to_string(s.number);
  DataSource ds;
  if (iso_data_source_new_from_file(path.c_str(), &ds.p) < 0) {
    r->notes.push_back(where + ": libisofs cannot open " + path);
    return;
  }
  ReadOpts ro;
  Image image;
  if (iso_read_opts_new(&ro.p, 0) < 0 || iso_image_new("discfs-verify", &image.p) < 0)
    throw std::bad_alloc();
  iso_read_opts_set_start_block(ro.p, static_cast<uint32_t>(s.tree_start()));
  iso_read_opts_set_no_aaip(ro.p, 0);  // the MD5 array's place is in the root's AAIP
  iso_read_opts_set_no_md5(ro.p, 2);   // the file MD5s, without refusing a damaged tag  // the file
                                       // MD5s, without refusing a damaged tag
  const int ret = iso_image_import(image.p, ds.p, ro.p, nullptr);
  if (ret < 0) {
    const std::string why = detail::drain_messages();
    r->notes.push_back(where + ": its tree could not be loaded for the file check" +
                       (why.empty() ? std::string() : ": " + why));
    return;
  }
  std::vector<FileItem> files;
  collect_files(image.p, iso_image_get_root(image.p), "", &files, &r->files_without_md5);
  uint64_t total = 0, done = 0;
  for (const FileItem& f : files)
    total += static_cast<uint64_t>(iso_file_get_size(f.file));
  const std::string phase = "files of " + where;
  std::vector<char> buf(kChunkBlocks * kBlockSize);
  for (const FileItem& f : files) {
    IsoStream* stream = iso_file_get_stream(f.file);
    std::string problem;
    if (iso_stream_open(stream) < 0) {
      problem = "unreadable: it cannot be opened";
    } else {
      Md5Ctx md5;
      for (;;) {
        const int got = iso_stream_read(stream, buf.data(), buf.size());
        if (got < 0) {
          problem = "unreadable: a read failed at byte " + std::to_string(done);
          break;
        }
        if (got == 0)
          break;
        md5.add(buf.data(), static_cast<size_t>(got));
        done += static_cast<uint64_t>(got);
        if (progress)
          progress(phase, done, total);
      }
      iso_stream_close(stream);
      if (problem.empty() && !same(md5.peek(), f.md5))
        problem = "its content does not match its recorded MD5";
    }
    ++r->files_checked;
    if (!problem.empty())
      r->files.push_back({s.number, f.path, problem});
  }
  detail::drain_messages();
}

}  // namespace

Md5Check check_md5(const std::string& path, const CheckProgress& progress) {
  const std::shared_ptr<const imagecore::Source> src = imagecore::open_file_source(path);
  Md5Check r;
  imagecore::SessionTable table;
  try {
    table = imagecore::read_session_table(*src);
  } catch (const imagecore::NotAnImage&) {
    if (!imagecore::has_udf(*src))
      throw;
    // UDF without ISO 9660: no sessions libisofs could have tagged; the other checks go on.
    r.notes.push_back("a UDF image without ISO 9660: there are no MD5 tags to check");
    return r;
  }
  if (!table.note.empty())
    r.notes.push_back("sessions: " + table.note);
  for (const imagecore::SessionEntry& s : table.sessions)
    r.sessions.push_back(check_session(*src, s, progress));

  detail::ensure_libraries();
  auto lock = detail::lock_libraries();
  for (const imagecore::SessionEntry& s : table.sessions)
    check_session_files(path, s, progress, &r);
  return r;
}

DigestCheck digest_image(const std::string& path, DigestKind kind, const CheckProgress& progress) {
  const std::shared_ptr<const imagecore::Source> src = imagecore::open_file_source(path);
  DigestCheck r;
  r.bytes = src->size();
  struct stat st {};
  if (src->fd() >= 0 && ::fstat(src->fd(), &st) == 0 && S_ISBLK(st.st_mode)) {
    // A device holds more than the image: hash as much as the newest session's volume says.
    const imagecore::SessionTable table = imagecore::read_session_table(*src);
    const imagecore::VolumeInfo v =
        imagecore::read_volume_descriptors(*src, table.sessions.back().tree_start());
    const uint64_t image_bytes = uint64_t{v.volume_blocks} * kBlockSize;
    if (image_bytes > src->size())
      throw imagecore::Error(EIO, path + ": the image's volume is " + std::to_string(image_bytes) +
                                      " bytes, the device only " + std::to_string(src->size()));
    r.whole_source = image_bytes == src->size();
    r.bytes = image_bytes;
  }
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), kind == DigestKind::Md5 ? EVP_md5() : EVP_sha256(),
                                nullptr) != 1)
    throw std::bad_alloc();
  const std::string phase = kind == DigestKind::Md5 ? "md5" : "sha256";
  std::vector<std::byte> buf(kChunkBlocks * kBlockSize * 2);
  for (uint64_t off = 0; off < r.bytes;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), r.bytes - off));
    src->read(off, std::span<std::byte>(buf.data(), n));
    EVP_DigestUpdate(ctx.get(), buf.data(), n);
    off += n;
    if (progress)
      progress(phase, off, r.bytes);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned i = 0; i < len; ++i) {
    r.hex += kHex[digest[i] >> 4];
    r.hex += kHex[digest[i] & 15];
  }
  return r;
}

}  // namespace burner
