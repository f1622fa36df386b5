// The rebuild: resolve every base path first, detach those nodes, empty the directories that
// are rebuilt, then attach old and new nodes in the staged order.
#include "burner/tree_build.h"

#include <sys/stat.h>

#include <set>
#include <string>
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
  }

  BuildStats run(const StagedEntry& root) {
    resolve(root, "");
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
    if (!e.base_path.empty() && !reusable(e) && e.type != FileType::Directory)
      keep_attrs(e);
    if (reusable(e) && !(path.empty())) {
      IsoNode* node = nullptr;
      if (iso_tree_path_to_node(image_, e.base_path.c_str(), &node) != 1 || node == nullptr) {
        throw imagecore::Error(ENOENT, target_ + ": " + e.base_path +
                                           " is staged as unchanged but is missing from the "
                                           "newest session");
      }
      const IsoNodeType type = iso_node_get_type(node);
      const bool ok = e.type == FileType::Directory ? type == LIBISO_DIR
                                                    : (type == LIBISO_FILE || type == LIBISO_BOOT);
      if (!ok) {
        throw imagecore::Error(
            EIO, target_ + ": " + e.base_path + " in the newest session is not the type staged");
      }
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
    } else {
      node = make_new(parent, e, path);
      give_attrs(node, e, path);
    }
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

  IsoImage* image_;
  std::string target_;
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
