// The handle table: an object lives from add() to remove(), and what the kernel never
// released is freed with the table.
#include "fusefs/handles.h"

#include <gtest/gtest.h>

#include <memory>

namespace fusefs {
namespace {

struct Counted {
  explicit Counted(int& freed) : freed(freed) {}
  ~Counted() { ++freed; }
  int& freed;
  int value = 0;
};

TEST(Handles, ObjectsLiveFromAddToRemoveAndLeftoversGoWithTheTable) {
  int freed = 0;
  {
    Handles<Counted> handles;
    const uint64_t a = handles.add(std::make_unique<Counted>(freed));
    const uint64_t b = handles.add(std::make_unique<Counted>(freed));
    EXPECT_NE(a, b);
    Handles<Counted>::get(a).value = 7;
    EXPECT_EQ(Handles<Counted>::get(a).value, 7);
    EXPECT_EQ(freed, 0);
    std::unique_ptr<Counted> taken = handles.remove(a);
    ASSERT_NE(taken, nullptr);
    EXPECT_EQ(taken->value, 7);
    taken.reset();
    EXPECT_EQ(freed, 1);
    EXPECT_EQ(handles.remove(a), nullptr) << "a handle removed twice";
    static_cast<void>(b);  // never released, as when the session ends first
  }
  EXPECT_EQ(freed, 2) << "a handle the kernel never released was not freed";
}

}  // namespace
}  // namespace fusefs
