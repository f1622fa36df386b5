// The open-file table against a real stage::Store (blank base, temporary directory): handles
// of one inode share one OpenFile, what one handle writes the others read, closing the writer
// makes the data durable and records it, and a commit learns which files hold it up.
#include "fusefs/open_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "fusefs/commit_gate.h"
#include "tests/unit/fusefs/temp_store.h"

namespace fusefs {
namespace {

using namespace std::chrono_literals;
using stage::StoreEntry;

class OpenFilesTest : public ::testing::Test {
 protected:
  size_t write(const std::shared_ptr<OpenFile>& f, const std::string& data, off_t off = 0) {
    std::lock_guard lock(f->mu);
    return files_.write(*f, data.data(), data.size(), off);
  }
  std::string read(const std::shared_ptr<OpenFile>& f, size_t size = 1 << 20, off_t off = 0) {
    std::lock_guard lock(f->mu);
    const std::vector<std::byte> got = files_.read(*f, size, off);
    return std::string(reinterpret_cast<const char*>(got.data()), got.size());
  }
  std::string on_disk(imagecore::Ino ino) {
    std::ifstream in(store_->local_path(ino), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  testing::TempStore store_;
  CommitGate gate_;
  OpenFiles files_{*store_, gate_};
};

TEST_F(OpenFilesTest, HandlesOfOneInodeShareOneOpenFile) {
  const StoreEntry e = store_.make_file("a");
  const std::shared_ptr<OpenFile> writer = files_.open(e, true);
  const std::shared_ptr<OpenFile> reader = files_.open(e, false);
  EXPECT_EQ(writer.get(), reader.get());
  EXPECT_EQ(files_.find(e.attr.ino).get(), writer.get());
  EXPECT_NE(files_.open(store_.make_file("b"), false).get(), writer.get());

  EXPECT_FALSE(files_.close(reader, false)) << "the writer still has it open";
  EXPECT_TRUE(files_.is_open(e.attr.ino));
  EXPECT_TRUE(files_.close(writer, true)) << "the last handle";
  EXPECT_FALSE(files_.is_open(e.attr.ino));
  EXPECT_EQ(files_.find(e.attr.ino), nullptr);
}

TEST_F(OpenFilesTest, WritesThroughOneHandleAreSeenThroughTheOther) {
  const StoreEntry e = store_.make_file("a");
  const std::shared_ptr<OpenFile> writer = files_.open(e, true);
  EXPECT_EQ(write(writer, "hello, stage"), 12u);
  // Opened after the write from the store's entry, which still says 0 bytes: the open file
  // knows better.
  const std::shared_ptr<OpenFile> reader = files_.open(store_->get(e.attr.ino), false);
  EXPECT_EQ(store_->get(e.attr.ino).attr.size, 0u);
  EXPECT_EQ(read(reader), "hello, stage");
  EXPECT_EQ(read(reader, 5, 7), "stage");
  EXPECT_EQ(write(writer, "STAGE", 7), 5u);
  EXPECT_EQ(read(reader), "hello, STAGE");
  files_.close(reader, false);
  files_.close(writer, true);
}

TEST_F(OpenFilesTest, ClosingTheWriterSyncsAndRecordsTheSize) {
  const StoreEntry e = store_.make_file("a");
  const std::shared_ptr<OpenFile> writer = files_.open(e, true);
  const std::shared_ptr<OpenFile> reader = files_.open(e, false);
  const std::string data(5000, 'x');
  write(writer, data);
  EXPECT_EQ(store_->get(e.attr.ino).attr.size, 0u) << "recorded before a flush or close";
  struct stat st {};
  st.st_size = 0;
  files_.show_pending(e.attr.ino, st);
  EXPECT_EQ(st.st_size, 5000) << "stat does not show what was written";

  EXPECT_FALSE(files_.close(writer, true));
  EXPECT_EQ(store_->get(e.attr.ino).attr.size, 5000u);
  EXPECT_EQ(on_disk(e.attr.ino), data);
  {
    std::lock_guard lock(reader->mu);
    EXPECT_FALSE(reader->dirty);
  }
  EXPECT_TRUE(files_.close(reader, false));
  EXPECT_EQ(store_->get(e.attr.ino).attr.size, 5000u);
}

TEST_F(OpenFilesTest, BigAlignedWritesReadBackWhicheverWayTheyWent) {
  // 1 MiB from a page-aligned buffer at an aligned offset: the O_DIRECT path, or the cached
  // one where the store's filesystem refuses O_DIRECT.
  constexpr size_t kSize = 1 << 20;
  std::unique_ptr<char, decltype(&std::free)> buf(
      static_cast<char*>(std::aligned_alloc(4096, kSize)), &std::free);
  ASSERT_NE(buf, nullptr);
  for (size_t i = 0; i < kSize; ++i)
    buf.get()[i] = static_cast<char>('a' + i % 23);
  const StoreEntry e = store_.make_file("big");
  const std::shared_ptr<OpenFile> f = files_.open(e, true);
  {
    std::lock_guard lock(f->mu);
    EXPECT_EQ(files_.write(*f, buf.get(), kSize, 4096), kSize);
    EXPECT_TRUE(f->direct_fd >= 0 || f->direct_refused);
  }
  const std::string back = read(f, kSize + 4096);
  ASSERT_EQ(back.size(), kSize + 4096);
  EXPECT_EQ(back.substr(0, 4096), std::string(4096, '\0'));
  EXPECT_EQ(back.substr(4096), std::string(buf.get(), kSize));
  files_.close(f, true);
  EXPECT_EQ(store_->get(e.attr.ino).attr.size, kSize + 4096);
}

TEST_F(OpenFilesTest, AWriteOnAHandleWithoutAStagedCopyFails) {
  const StoreEntry dir =
      store_->make(imagecore::kRootIno, "d", imagecore::FileType::Directory, 0755, 0, 0, 0, "");
  StoreEntry none = dir;
  none.data = StoreEntry::Data::None;
  const std::shared_ptr<OpenFile> f = files_.open(none, false);
  try {
    write(f, "x");
    ADD_FAILURE() << "wrote to a file with no staged copy";
  } catch (const imagecore::Error& err) {
    EXPECT_EQ(err.code(), EBADF);
  }
  files_.close(f, false);
}

TEST_F(OpenFilesTest, PauseTimesOutAndNamesTheFilesStillOpenForWriting) {
  const std::shared_ptr<OpenFile> busy = files_.open(store_.make_file("busy"), true);
  const std::shared_ptr<OpenFile> idle = files_.open(store_.make_file("idle"), false);
  EXPECT_EQ(gate_.pause(50ms), CommitGate::Paused::Busy);
  EXPECT_EQ(files_.writer_paths(), std::vector<std::string>{"/busy"});
  gate_.resume();

  store_->unlink(imagecore::kRootIno, "busy");
  EXPECT_EQ(files_.writer_paths(),
            std::vector<std::string>{"(inode " + std::to_string(busy->ino) + ", deleted)"});

  files_.close(busy, true);
  EXPECT_TRUE(files_.writer_paths().empty());
  EXPECT_EQ(gate_.pause(50ms), CommitGate::Paused::Yes)
      << "the closed writer still holds up a commit";
  gate_.resume();
  files_.close(idle, false);
}

TEST_F(OpenFilesTest, TimesSetWhileOpenForWritingWaitForTheSync) {
  const StoreEntry e = store_.make_file("a");
  const std::shared_ptr<OpenFile> reader = files_.open(e, false);
  const imagecore::Timestamp then{1000000000, 5};
  {
    std::lock_guard lock(reader->mu);
    EXPECT_FALSE(files_.defer_times(*reader, std::nullopt, then, then))
        << "kept times for a file nobody writes";
  }
  const std::shared_ptr<OpenFile> writer = files_.open(e, true);
  write(writer, "data");
  {
    std::lock_guard lock(writer->mu);
    EXPECT_TRUE(files_.defer_times(*writer, std::nullopt, then, then));
  }
  EXPECT_NE(store_->get(e.attr.ino).attr.mtime, then) << "stored before the sync";
  files_.close(writer, true);
  EXPECT_EQ(store_->get(e.attr.ino).attr.mtime, then);
  files_.close(reader, false);
}

}  // namespace
}  // namespace fusefs
