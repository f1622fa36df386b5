// A stage::Store in a fresh temporary directory, on a blank base (no image needed), removed
// again with everything in it.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "stage/store.h"

namespace fusefs::testing {

class TempStore {
 public:
  TempStore() {
    char tmpl[] = "/tmp/fusefs_test.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
      throw std::runtime_error("cannot create a temporary directory");
    root_ = tmpl;
    stage::StoreOptions o;
    o.target = root_ + "/blank.iso";
    o.mountpoint = root_ + "/mnt";
    store_ = std::make_unique<stage::Store>(root_ + "/store", o);
    store_->use_base(nullptr, 0, 0);
  }
  ~TempStore() {
    store_.reset();
    std::filesystem::remove_all(root_);
  }
  TempStore(const TempStore&) = delete;
  TempStore& operator=(const TempStore&) = delete;

  stage::Store& operator*() { return *store_; }
  stage::Store* operator->() { return store_.get(); }

  // A new empty regular file `name` in the root.
  stage::StoreEntry make_file(const std::string& name) {
    return store_->make(imagecore::kRootIno, name, imagecore::FileType::Regular, 0644, 0, 0, 0, "");
  }

 private:
  std::string root_;
  std::unique_ptr<stage::Store> store_;
};

}  // namespace fusefs::testing
