// The rebuild: resolve every base path first, detach those nodes, empty the directories that
// are rebuilt, then attach old and new nodes in the staged order.
#include "burner/tree_build.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "burner/libs.h"
#include "imagecore/base/error.h"

namespace burner::detail {
namespace {

using imagecore::FileType;

class Builder {
 public:
  Builder(IsoImage* image, const std::string& target) : image_(image), target_(target) {}
  ~Builder() {
    for (auto& [entry, node] : resolved_) {
      // Detached but never re-attached (a failed rebuild): drop the parent's old reference.
      if (detached_.count(node) && iso_node_get_parent(node) == nullptr)
        iso_node_unref(node);
      iso_node_unref(node);
    }
    for (IsoNode* node : held_)
      iso_node_unref(node);
    for (const std::string& p : temp_files_)
      ::unlink(p.c_str());
    if (!temp_dir_.empty())
      ::rmdir(temp_dir_.c_str());
  }

  BuildStats run(const StagedEntry& root) {
    // Symlinks and devices made for hard links are added as themselves.
    iso_tree_set_follow_symlinks(image_, 0);
    resolve(root, "");
    plan_groups();
    IsoDir* iso_root = iso_image_get_root(image_);
    for (auto& [entry, node] : resolved_) {
      if (iso_node_get_parent(node) != nullptr && node != reinterpret_cast<IsoNode*>(iso_root)) {
        // The parent's reference passes to us; iso_dir_add_node() hands it to the new parent.
        check(iso_node_take(node), "detaching", entry->base_path);
        detached_.insert(node);
      }
    }
    clear(iso_root);
    apply_attrs(reinterpret_cast<IsoNode*>(iso_root), root);
    build_children(iso_root, root, "");
    join_names_elsewhere(iso_root);
    return stats_;
  }

 private:
  static bool reusable(const StagedEntry& e) {
    if (e.base_path.empty())
      return false;
    return e.type == FileType::Directory ||
           (e.type == FileType::Regular && e.data == StagedEntry::Data::Base);
  }

  void check(int ret, const char* what, const std::string& path) {
    if (ret >= 0)
      return;
    const std::string why = drain_messages();
    throw imagecore::Error(EIO, target_ + ": " + what + " " + (path.empty() ? "/" : path) +
                                    " failed: " + iso_error_to_msg(ret) +
                                    (why.empty() ? "" : " (" + why + ")"));
  }

  // Extended attributes and ACLs (AAIP) of a base entry that the rebuild replaces by a new
  // node: a base file whose contents were staged, a base symlink or device. The new node
  // takes them over, so staging a change never loses them. libisofs-internal isofs.*
  // attributes (such as the MD5 index) stay with the old node.
  struct Attrs {
    std::vector<std::string> names, values;
  };
  void keep_attrs(const StagedEntry& e) {
    IsoNode* node = nullptr;
    if (iso_tree_path_to_node(image_, e.base_path.c_str(), &node) != 1 || node == nullptr)
      return;
    size_t n = 0;
    char** names = nullptr;
    size_t* lengths = nullptr;
    char** values = nullptr;
    if (iso_node_get_attrs(node, &n, &names, &lengths, &values, 1) < 0)
      return;
    Attrs a;
    for (size_t i = 0; i < n; ++i) {
      const std::string name = names[i];
      if (name.rfind("isofs.", 0) == 0)
        continue;
      a.names.push_back(name);
      a.values.emplace_back(values[i], lengths[i]);
    }
    iso_node_get_attrs(node, &n, &names, &lengths, &values, 1 << 15);
    if (!a.names.empty())
      kept_attrs_.emplace(&e, std::move(a));
  }

  void give_attrs(IsoNode* node, const StagedEntry& e, const std::string& path) {
    auto it = kept_attrs_.find(&e);
    if (it == kept_attrs_.end())
      return;
    const Attrs& a = it->second;
    std::vector<char*> names, values;
    std::vector<size_t> lengths;
    for (size_t i = 0; i < a.names.size(); ++i) {
      names.push_back(const_cast<char*>(a.names[i].c_str()));
      values.push_back(const_cast<char*>(a.values[i].data()));
      lengths.push_back(a.values[i].size());
    }
    // bit0: the ACLs too (the pair with the empty name); bit3: every namespace; bit4:
    // leave isofs.* alone.
    check(iso_node_set_attrs(node, names.size(), names.data(), lengths.data(), values.data(),
                             1 | 8 | 16),
          "keeping the extended attributes of", path);
    // The staged permissions win; the access ACL follows them (its mask or group entry).
    iso_node_set_permissions(node, static_cast<mode_t>(e.perm & 07777));
    check(iso_node_set_acl_text(node, nullptr, nullptr, 2), "updating the ACL of", path);
  }

  void resolve(const StagedEntry& e, const std::string& path) {
    if (e.link_group != 0 && e.type != FileType::Directory) {
      // Hard links: planned together once every name is known (plan_groups).
      Group& g = groups_[e.link_group];
      g.entries.emplace_back(&e, path);
      group_of_[&e] = &g;
      if (!e.base_path.empty() && e.type == FileType::Regular && !reusable(e))
        keep_attrs(e);
      return;
    }
    if (!e.base_path.empty() && !reusable(e) && e.type != FileType::Directory)
      keep_attrs(e);
    if (reusable(e) && !(path.empty())) {
      IsoNode* node = loaded_node(e, true, "staged as unchanged");
      if (used_.insert(node).second) {
        iso_node_ref(node);
        resolved_.emplace(&e, node);
      } else {
        clones_.emplace(&e, node);  // a second name of the same base file
      }
    }
    if (e.type == FileType::Directory && !e.whole_base_dir) {
      for (const StagedEntry& c : e.children)
        resolve(c, path + "/" + c.name);
    }
  }

  // The names of one file (StagedEntry::link_group), written as one file: libisofs gives
  // nodes one Rock Ridge inode serial when they have the same identity (the loaded inode
  // number, or the device and inode of their source) and the same attributes and xattrs.
  struct Group {
    std::vector<std::pair<const StagedEntry*, std::string>> entries;  // with their paths
    IsoNode* base = nullptr;       // held: the loaded node of the file, if it is a base file
    bool reuse = false;            // each name keeps the loaded node at its own path
    IsoNode* model = nullptr;      // the first node built: the others are its clones
    std::set<IsoNode*> elsewhere;  // held: loaded names of the file (may be outside the tree)
  };

  static bool type_matches(FileType t, IsoNode* node) {
    const IsoNodeType nt = iso_node_get_type(node);
    switch (t) {
      case FileType::Regular:
        return nt == LIBISO_FILE;
      case FileType::Symlink:
        return nt == LIBISO_SYMLINK;
      case FileType::Directory:
        return nt == LIBISO_DIR;
      default:
        return nt == LIBISO_SPECIAL;
    }
  }

  // The loaded node at e.base_path, of the type staged (a regular file may be an El Torito
  // boot file where `boot_ok`). `staged` says how e was staged, for the error.
  IsoNode* loaded_node(const StagedEntry& e, bool boot_ok, std::string_view staged) {
    IsoNode* node = nullptr;
    if (iso_tree_path_to_node(image_, e.base_path.c_str(), &node) != 1 || node == nullptr) {
      throw imagecore::Error(ENOENT, target_ + ": " + e.base_path + " is " + std::string(staged) +
                                         " but is missing from the newest session");
    }
    const bool boot =
        boot_ok && e.type == FileType::Regular && iso_node_get_type(node) == LIBISO_BOOT;
    if (!type_matches(e.type, node) && !boot) {
      throw imagecore::Error(
          EIO, target_ + ": " + e.base_path + " in the newest session is not the type staged");
    }
    return node;
  }

  IsoNode* hold(IsoNode* node) {
    iso_node_ref(node);
    held_.push_back(node);
    return node;
  }

  void plan_groups() {
    struct ByIno {
      bool operator()(IsoNode* a, IsoNode* b) const { return iso_node_cmp_ino(a, b, 0) < 0; }
    };
    std::map<IsoNode*, Group*, ByIno> by_base;
    for (auto& [id, g] : groups_) {
      const StagedEntry& first = *g.entries.front().first;
      if (first.base_path.empty())
        continue;  // made on the stage: all its names are in the tree
      // Not a boot file: a regular file's node is read as an IsoFile below.
      g.base = hold(loaded_node(first, false, "staged"));
      if (reusable(first)) {
        // Unchanged contents: when every name is still where it was, each keeps its loaded
        // node. Otherwise the first name takes the loaded node and the others are its
        // clones; all share its extents (nothing is written again, and nothing can be:
        // the target is not readable while the session is written).
        std::vector<IsoNode*> own;
        for (auto& [e, path] : g.entries) {
          IsoNode* n = nullptr;
          if (iso_tree_path_to_node(image_, path.c_str(), &n) != 1 || n == nullptr ||
              iso_node_get_type(n) != LIBISO_FILE || used_.count(n) ||
              iso_node_cmp_ino(n, g.base, 0) != 0 ||
              std::find(own.begin(), own.end(), n) != own.end())
            break;
          own.push_back(n);
        }
        g.reuse = own.size() == g.entries.size();
        if (!g.reuse) {
          own.assign(1, g.base);
          if (used_.count(g.base))
            throw imagecore::Error(
                EIO, target_ + ": " + first.base_path + " is staged twice as unchanged");
          // libisofs gives clones an MD5 but no loaded file without one, which would
          // make them two files: give the loaded node its MD5 first (reads it once).
          IsoFile* file = reinterpret_cast<IsoFile*>(g.base);
          char md5[16];
          if (iso_file_get_md5(image_, file, md5, 1) != 1)
            check(iso_file_make_md5(file, 0), "checksumming", first.base_path);
        }
        for (size_t i = 0; i < g.entries.size(); ++i) {
          const StagedEntry* e = g.entries[i].first;
          if (i < own.size()) {
            used_.insert(own[i]);
            iso_node_ref(own[i]);
            resolved_.emplace(e, own[i]);
          } else {
            clones_.emplace(e, g.base);
          }
        }
      } else if (first.type != FileType::Regular) {
        for (auto& [e, path] : g.entries)
          clones_.emplace(e, g.base);  // symlinks and devices carry the loaded inode number
      }
      if (first.nlink > g.entries.size())
        by_base.emplace(g.base, &g);
    }
    if (by_base.empty())
      return;
    // Some names are in directories reused whole: find the loaded nodes of those files.
    for_each_leaf(iso_image_get_root(image_), [&](IsoNode* child) {
      if (auto it = by_base.find(child); it != by_base.end()) {
        if (it->second->elsewhere.insert(child).second)
          hold(child);
      }
    });
  }

  // Calls fn(node) for every node below `root` that is not a directory.
  template <class Fn>
  void for_each_leaf(IsoDir* root, Fn fn) {
    std::vector<IsoDir*> dirs{root};
    while (!dirs.empty()) {
      IsoDir* dir = dirs.back();
      dirs.pop_back();
      IsoDirIter* iter = nullptr;
      check(iso_dir_get_children(dir, &iter), "listing", "a directory");
      IsoNode* child = nullptr;
      while (iso_dir_iter_next(iter, &child) == 1) {
        if (iso_node_get_type(child) == LIBISO_DIR)
          dirs.push_back(reinterpret_cast<IsoDir*>(child));
        else
          fn(child);
      }
      iso_dir_iter_free(iter);
    }
  }

  // After the build: the names of hard-linked files that stayed in directories reused whole
  // get the group's attributes, or (when the group's nodes are new) become clones of it.
  void join_names_elsewhere(IsoDir* root) {
    std::unordered_map<IsoNode*, Group*> wanted;
    for (auto& [id, g] : groups_) {
      for (IsoNode* n : g.elsewhere)
        wanted.emplace(n, &g);
    }
    if (wanted.empty())
      return;
    std::vector<std::pair<IsoNode*, Group*>> found;
    for_each_leaf(root, [&](IsoNode* child) {
      if (!built_.count(child)) {
        if (auto it = wanted.find(child); it != wanted.end())
          found.emplace_back(child, it->second);
      }
    });
    for (auto& [node, g] : found) {
      const StagedEntry& e = *g->entries.front().first;
      if (g->reuse || g->model == nullptr) {
        apply_attrs(node, e);
        continue;
      }
      IsoDir* parent = iso_node_get_parent(node);
      const std::string name = iso_node_get_name(node);
      check(iso_node_remove(node), "replacing", name);  // still held
      IsoNode* clone = nullptr;
      check(iso_image_tree_clone(image_, g->model, parent, const_cast<char*>(name.c_str()), &clone,
                                 0),
            "linking", name);
      apply_attrs(clone, e);
      built_.insert(clone);
      ++stats_.cloned_nodes;
    }
  }

  // A symlink, device, FIFO or socket made on the stage with more than one name: libisofs
  // links such nodes only when they come from one source object, so one is made in a
  // private folder and added from there. Falls back to a node of its own (with a warning)
  // where the object cannot be made (a device node without CAP_MKNOD).
  IsoNode* make_linked_special(IsoDir* parent, const StagedEntry& e, const std::string& path) {
    if (temp_dir_.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/discfs-links-XXXXXX";
      if (::mkdtemp(templ.data()) == nullptr) {
        spdlog::warn("{}: {}: cannot make a folder for hard-linked special files: {}", target_,
                     path, std::strerror(errno));
        return make_new(parent, e, path);
      }
      temp_dir_ = templ;
    }
    const std::string p = temp_dir_ + "/" + std::to_string(temp_files_.size());
    int ret;
    switch (e.type) {
      case FileType::Symlink:
        ret = ::symlink(e.symlink_target.c_str(), p.c_str());
        break;
      case FileType::CharDevice:
        ret = ::mknod(p.c_str(), S_IFCHR | 0600, static_cast<dev_t>(e.rdev));
        break;
      case FileType::BlockDevice:
        ret = ::mknod(p.c_str(), S_IFBLK | 0600, static_cast<dev_t>(e.rdev));
        break;
      case FileType::Fifo:
        ret = ::mknod(p.c_str(), S_IFIFO | 0600, 0);
        break;
      default:
        ret = ::mknod(p.c_str(), S_IFSOCK | 0600, 0);
        break;
    }
    if (ret != 0) {
      spdlog::warn("{}: {}: its names are written as separate files (cannot make one to link: {})",
                   target_, path, std::strerror(errno));
      return make_new(parent, e, path);
    }
    temp_files_.push_back(p);
    IsoNode* node = nullptr;
    check(iso_tree_add_new_node(image_, parent, e.name.c_str(), p.c_str(), &node), "adding", path);
    return node;
  }

  // Removes what is left in a reused directory that is rebuilt (deleted or replaced names).
  void clear(IsoDir* dir) {
    IsoDirIter* iter = nullptr;
    check(iso_dir_get_children(dir, &iter), "listing", "a directory");
    IsoNode* child = nullptr;
    while (iso_dir_iter_next(iter, &child) == 1) {
      check(iso_dir_iter_remove(iter), "removing", iso_node_get_name(child));
    }
    iso_dir_iter_free(iter);
  }

  void apply_attrs(IsoNode* node, const StagedEntry& e) {
    iso_node_set_permissions(node, static_cast<mode_t>(e.perm & 07777));
    iso_node_set_uid(node, static_cast<uid_t>(e.uid));
    iso_node_set_gid(node, static_cast<gid_t>(e.gid));
    iso_node_set_mtime(node, static_cast<time_t>(e.mtime.sec));
    iso_node_set_atime(node, static_cast<time_t>(e.atime.sec));
    iso_node_set_ctime(node, static_cast<time_t>(e.ctime.sec));
  }

  void build_children(IsoDir* dir, const StagedEntry& e, const std::string& path) {
    for (const StagedEntry& c : e.children)
      build(dir, c, path + "/" + c.name);
  }

  void build(IsoDir* parent, const StagedEntry& e, const std::string& path) {
    IsoNode* node = nullptr;
    if (auto it = resolved_.find(&e); it != resolved_.end()) {
      node = it->second;
      if (e.name != iso_node_get_name(node)) {
        check(iso_node_set_name(node, e.name.c_str()), "renaming", path);
      }
      check(iso_dir_add_node(parent, node, ISO_REPLACE_NEVER), "adding", path);
      ++stats_.reused_nodes;
      if (e.type == FileType::Directory && !e.whole_base_dir) {
        clear(reinterpret_cast<IsoDir*>(node));
      }
    } else if (auto cl = clones_.find(&e); cl != clones_.end()) {
      check(iso_image_tree_clone(image_, cl->second, parent, const_cast<char*>(e.name.c_str()),
                                 &node, 0),
            "cloning", path);
      ++stats_.cloned_nodes;
    } else if (Group* g = group_of(e); g && g->model && e.type != FileType::Regular) {
      check(iso_image_tree_clone(image_, g->model, parent, const_cast<char*>(e.name.c_str()), &node,
                                 0),
            "linking", path);
      ++stats_.cloned_nodes;
    } else if (g && e.type != FileType::Regular) {
      node = make_linked_special(parent, e, path);
    } else {
      node = make_new(parent, e, path);
      give_attrs(node, e, path);
    }
    built_.insert(node);
    if (Group* g = group_of(e); g && g->model == nullptr)
      g->model = node;
    apply_attrs(node, e);
    if (e.type == FileType::Directory && !e.whole_base_dir) {
      build_children(reinterpret_cast<IsoDir*>(node), e, path);
    }
  }

  IsoNode* make_new(IsoDir* parent, const StagedEntry& e, const std::string& path) {
    const char* name = e.name.c_str();
    switch (e.type) {
      case FileType::Directory: {
        IsoDir* dir = nullptr;
        check(iso_tree_add_new_dir(parent, name, &dir), "creating directory", path);
        return reinterpret_cast<IsoNode*>(dir);
      }
      case FileType::Regular: {
        if (e.data != StagedEntry::Data::Local || e.local_path.empty()) {
          throw imagecore::Error(EINVAL, target_ + ": " + path +
                                             " has no content to commit (no base file and no "
                                             "staged file)");
        }
        struct stat st {};
        if (::stat(e.local_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
          throw imagecore::Error(errno ? errno : EIO, target_ + ": staged content of " + path +
                                                          " (" + e.local_path + ") cannot be read");
        }
        IsoNode* node = nullptr;
        check(iso_tree_add_new_node(image_, parent, name, e.local_path.c_str(), &node), "adding",
              path);
        if (local_seen_.insert(e.local_path).second) {
          stats_.new_data_bytes += static_cast<uint64_t>(st.st_size);
        }
        return node;
      }
      case FileType::Symlink: {
        IsoSymlink* link = nullptr;
        check(iso_tree_add_new_symlink(parent, name, e.symlink_target.c_str(), &link),
              "creating symlink", path);
        return reinterpret_cast<IsoNode*>(link);
      }
      case FileType::CharDevice:
      case FileType::BlockDevice:
      case FileType::Fifo:
      case FileType::Socket: {
        mode_t kind = e.type == FileType::CharDevice    ? S_IFCHR
                      : e.type == FileType::BlockDevice ? S_IFBLK
                      : e.type == FileType::Fifo        ? S_IFIFO
                                                        : S_IFSOCK;
        IsoSpecial* special = nullptr;
        check(iso_tree_add_new_special(parent, name, kind | (e.perm & 07777),
                                       static_cast<dev_t>(e.rdev), &special),
              "creating special file", path);
        return reinterpret_cast<IsoNode*>(special);
      }
    }
    throw imagecore::Error(EINVAL, target_ + ": " + path + " has an unknown file type");
  }

  Group* group_of(const StagedEntry& e) {
    auto it = group_of_.find(&e);
    return it == group_of_.end() ? nullptr : it->second;
  }

  IsoImage* image_;
  std::string target_;
  std::map<uint64_t, Group> groups_;
  std::unordered_map<const StagedEntry*, Group*> group_of_;
  std::set<IsoNode*> built_;    // every node the build attached for a staged entry
  std::vector<IsoNode*> held_;  // one reference each, dropped at the end
  std::string temp_dir_;        // make_linked_special's objects
  std::vector<std::string> temp_files_;
  std::unordered_map<const StagedEntry*, IsoNode*> resolved_;  // each holds one reference
  std::unordered_map<const StagedEntry*, IsoNode*> clones_;    // no reference
  std::set<IsoNode*> used_;
  std::set<IsoNode*> detached_;  // taken from their parents, holding the parent's reference
  std::set<std::string> local_seen_;
  std::unordered_map<const StagedEntry*, Attrs> kept_attrs_;
  BuildStats stats_;
};

}  // namespace

BuildStats rebuild_tree(IsoImage* image,
                        const burner::StagedEntry& root,
                        const std::string& target) {
  Builder builder(image, target);
  return builder.run(root);
}

}  // namespace burner::detail
