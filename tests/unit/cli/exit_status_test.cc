// Every exception a verb can throw becomes the exit code man/discfs.1 documents and one
// sentence; nothing is left to std::terminate.
#include <gtest/gtest.h>

#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

#include "cli/exit_codes.h"
#include "imagecore/base/json.h"

namespace discfs {
namespace {

template <typename E>
ExitStatus status_of(const E& e) {
  return exit_status_for(std::make_exception_ptr(e));
}

TEST(ExitStatus, CodesAreTheDocumentedNumbers) {
  // man/discfs.1, EXIT STATUS; scripts depend on these.
  EXPECT_EQ(static_cast<int>(ExitCode::Internal), 1);
  EXPECT_EQ(static_cast<int>(ExitCode::Usage), 2);
  EXPECT_EQ(static_cast<int>(ExitCode::CannotOpen), 3);
  EXPECT_EQ(static_cast<int>(ExitCode::NotAnImage), 4);
  EXPECT_EQ(static_cast<int>(ExitCode::Unsupported), 5);
  EXPECT_EQ(static_cast<int>(ExitCode::MountFailed), 6);
  EXPECT_EQ(static_cast<int>(ExitCode::Busy), 7);
  EXPECT_EQ(static_cast<int>(ExitCode::CommitFailed), 8);
  EXPECT_EQ(static_cast<int>(ExitCode::Mismatch), 9);
  EXPECT_EQ(static_cast<int>(ExitCode::MediumRefused), 10);
  EXPECT_EQ(static_cast<int>(ExitCode::Cancelled), 130);
}

TEST(ExitStatus, FailureKeepsItsCodeAndSentence) {
  const ExitStatus s = status_of(Failure(ExitCode::MountFailed, "/mnt: not a directory"));
  EXPECT_EQ(s.code, ExitCode::MountFailed);
  EXPECT_EQ(s.message, "/mnt: not a directory");
}

TEST(ExitStatus, ImagecoreErrorsBySourceProblem) {
  EXPECT_EQ(status_of(imagecore::Error(ENOENT, "a.iso: cannot open")).code, ExitCode::CannotOpen);
  EXPECT_EQ(status_of(imagecore::Error(EIO, "a.iso: read failed")).code, ExitCode::CannotOpen);
  EXPECT_EQ(status_of(imagecore::NotAnImage("a.iso: not ISO 9660")).code, ExitCode::NotAnImage);
  EXPECT_EQ(status_of(imagecore::FormatError("a.iso: bad root")).code, ExitCode::NotAnImage);
  EXPECT_EQ(status_of(imagecore::Unsupported("a.iso: 4096-byte blocks")).code,
            ExitCode::Unsupported);
  EXPECT_EQ(status_of(imagecore::Error(ENOENT, "a.iso: cannot open")).message,
            "a.iso: cannot open");
}

TEST(ExitStatus, BusyWhateverTheVerb) {
  EXPECT_EQ(status_of(imagecore::Error(EBUSY, "t.iso: already staged")).code, ExitCode::Busy);
  EXPECT_EQ(status_of(CommitFailure(EBUSY, "files are still open")).code, ExitCode::Busy);
}

TEST(ExitStatus, AFailedCommitIsCommitFailedWhateverTheErrno) {
  for (int err : {EIO, ENOENT, EINVAL, ENOSPC}) {
    const ExitStatus s = status_of(CommitFailure(err, "t.iso: verifying failed"));
    EXPECT_EQ(s.code, ExitCode::CommitFailed) << err;
    EXPECT_EQ(s.message, "t.iso: verifying failed");
  }
}

TEST(ExitStatus, FilesystemErrorNamesThePathAndTheReason) {
  const ExitStatus s = status_of(std::filesystem::filesystem_error(
      "cannot make absolute path", "new.iso",
      std::make_error_code(std::errc::no_such_file_or_directory)));
  EXPECT_EQ(s.code, ExitCode::CannotOpen);
  EXPECT_EQ(s.message, "new.iso: cannot make absolute path: No such file or directory");
}

TEST(ExitStatus, AnythingElseIsInternal) {
  EXPECT_EQ(status_of(std::invalid_argument("stoull")).code, ExitCode::Internal);
  EXPECT_EQ(status_of(std::invalid_argument("stoull")).message, "internal error: stoull");
  EXPECT_EQ(
      status_of(std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again)))
          .code,
      ExitCode::Internal);
  EXPECT_EQ(status_of(std::bad_alloc()).message, "out of memory");
  EXPECT_EQ(status_of(42).code, ExitCode::Internal);
  EXPECT_EQ(exit_status_for(nullptr).code, ExitCode::Internal);
}

TEST(JsonString, QuotesWhatJsonNeedsQuoted) {
  EXPECT_EQ(imagecore::json_string("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(imagecore::json_string("l1\nl2\tx\r"), R"("l1\nl2\tx\r")");
  EXPECT_EQ(imagecore::json_string(std::string("\x01\x1f", 2)), R"("\u0001\u001f")");
  EXPECT_EQ(imagecore::json_string("gr\xc3\xbc\xc3\x9f / \xff"), "\"gr\xc3\xbc\xc3\x9f / \xff\"");
}

}  // namespace
}  // namespace discfs
