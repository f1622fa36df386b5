// The -o lists of `discfs mount` and `discfs stage`, as mount(8), fstab and mount.fuse3 pass
// them: what is dropped, what discfs takes, and what goes on to libfuse.
#include "cli/fuse_options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/exit_codes.h"

namespace discfs {
namespace {

using Options = std::vector<std::string>;

TEST(SplitMountOptions, DropsWhatOnlyMountAndFstabMean) {
  EXPECT_EQ(split_mount_options({"defaults,auto,noauto,user,users,nouser,_netdev,nofail,rw,"
                                 "x-systemd.automount,x-gvfs-show,comment=systemd.idle,"
                                 "allow_other"}),
            Options{"allow_other"});
}

TEST(SplitMountOptions, KeepsTheOrderAcrossSeveralLists) {
  EXPECT_EQ(split_mount_options({"allow_other,,max_read=65536,", "fsname=a", ""}),
            (Options{"allow_other", "max_read=65536", "fsname=a"}));
}

TEST(FsnameOption, CommasAndBackslashesInTheSourceAreEscaped) {
  // Unescaped, "/a,b.iso" would end the option at the comma and pass "b.iso" as another.
  EXPECT_EQ(fsname_option("/img/a,b\\c.iso"), "fsname=/img/a\\,b\\\\c.iso");
  EXPECT_EQ(fsname_option("/plain/é x.iso"), "fsname=/plain/é x.iso");
}

TEST(StageOptions, UserFromFstabDoesNotReachLibfuse) {
  EXPECT_EQ(parse_stage_options({"user,noauto,allow_other"}), Options{"allow_other"});
}

TEST(StageOptions, ReadOnlyGoesOnToLibfuse) {
  EXPECT_EQ(parse_stage_options({"ro"}), Options{"ro"});
}

TEST(MountOptions, TakesDiscfsOwnAndPassesTheRest) {
  const MountOptionSet s =
      parse_mount_options({"uid=1000,gid=100,umask=027,tree=joliet,session=2,boot,splice",
                           "readahead_kb=512,"
                           "allow_other,ro,user"});
  EXPECT_EQ(s.view.uid, 1000u);
  EXPECT_EQ(s.view.gid, 100u);
  EXPECT_EQ(s.view.umask, 027u);
  EXPECT_TRUE(s.view.splice);
  EXPECT_EQ(s.tree, "joliet");
  EXPECT_EQ(s.session, 2u);
  EXPECT_TRUE(s.boot);
  EXPECT_FALSE(s.sessions);
  EXPECT_EQ(s.readahead_kb, 512u);
  EXPECT_EQ(s.fuse, Options{"allow_other"});
}

TEST(MountOptions, MountHelperDefaultsDoNotOverrideNosuidNodev) {
  // mount.fuse3 appends "dev" then "suid" unless told "nodev"/"nosuid"; those are its
  // defaults, not the user's, and must not undo safe_mount_defaults().
  EXPECT_EQ(parse_mount_options({"allow_other,dev,suid"}, true).fuse, Options{"allow_other"});
  EXPECT_EQ(parse_mount_options({"nosuid,dev"}, true).fuse, Options{"nosuid"});
  EXPECT_EQ(parse_mount_options({"nodev,suid"}, true).fuse, Options{"nodev"});
  // What the user wrote comes first and stays.
  EXPECT_EQ(parse_mount_options({"suid,dev,dev,suid"}, true).fuse, (Options{"suid", "dev"}));
  // `discfs mount -o suid,dev` means them.
  EXPECT_EQ(parse_mount_options({"suid,dev"}).fuse, (Options{"suid", "dev"}));
  EXPECT_EQ(safe_mount_defaults(), (Options{"nosuid", "nodev"}));
}

TEST(MountOptions, LeavesUnsetWhatTheListDoesNotName) {
  const MountOptionSet s = parse_mount_options({"sessions"});
  EXPECT_TRUE(s.sessions);
  EXPECT_FALSE(s.view.uid || s.view.gid || s.view.umask || s.readahead_kb || s.tree || s.session);
  EXPECT_TRUE(s.fuse.empty());
}

TEST(MountOptions, BadValueIsAUsageErrorNamingTheOption) {
  for (const std::string o : {"uid=", "uid=abc", "gid=1x", "umask=8", "umask=10000",
                              "readahead_kb=1048577", "readahead_kb=-"}) {
    try {
      parse_mount_options({"allow_other," + o});
      ADD_FAILURE() << o << " was taken";
    } catch (const Failure& f) {
      EXPECT_EQ(f.code(), ExitCode::Usage) << o;
      EXPECT_EQ(std::string(f.what()), "bad value in -o " + o);
    }
  }
}

TEST(MountOptions, OwnersMustFitAnId) {
  for (const std::string o : {"uid=4294967296", "gid=4294967297", "uid=4294967295", "gid=-1"}) {
    try {
      parse_mount_options({o});
      ADD_FAILURE() << o << " was taken";
    } catch (const Failure& f) {
      EXPECT_EQ(f.code(), ExitCode::Usage) << o;
    }
  }
  EXPECT_EQ(parse_mount_options({"uid=4294967294"}).view.uid, 4294967294u);
  EXPECT_EQ(parse_mount_options({"gid=0"}).view.gid, 0u);
}

TEST(MountOptions, SessionsCountFromOne) {
  for (const std::string o : {"session=0", "session=100001", "session="}) {
    try {
      parse_mount_options({o});
      ADD_FAILURE() << o << " was taken";
    } catch (const Failure& f) {
      EXPECT_EQ(f.code(), ExitCode::Usage) << o;
      EXPECT_EQ(std::string(f.what()), "bad value in -o " + o + " (sessions count from 1)");
    }
  }
  EXPECT_EQ(parse_mount_options({"session=100000"}).session, 100000u);
}

}  // namespace
}  // namespace discfs
