// Copying an image file, block device or disc into an image file, for `discfs rip`: as far as
// the recorded sessions reach, bad sectors retried block by block, then zero-filled and
// recorded in a GNU ddrescue mapfile that is saved as the run goes, so that a later run with
// the same map reads only what is still bad or not tried.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace burner {

// One line of a ddrescue mapfile: `size` bytes at `pos` with a status: '?' non-tried,
// '+' finished, '-' bad sector (ddrescue's other states, '*' and '/', read as '?').
struct MapBlock {
  uint64_t pos = 0;
  uint64_t size = 0;
  char status = '?';
};

// A mapfile: contiguous blocks from 0. Reads and writes ddrescue's text format.
class RescueMap {
 public:
  // A map of `size` bytes, all non-tried.
  explicit RescueMap(uint64_t size = 0);
  // Parses ddrescue's format. Throws imagecore::Error(EINVAL) naming `name` and the line
  // when it is not a mapfile (or its blocks are not contiguous from 0).
  static RescueMap parse(const std::string& text, const std::string& name);
  // The text, with `comment` lines ("# ...") first.
  std::string text(const std::vector<std::string>& comments, uint64_t current_pos) const;
  // Sets the status of [pos, pos+size), merging neighbours of the same status.
  void set(uint64_t pos, uint64_t size, char status);
  uint64_t size() const;
  uint64_t bytes_with(char status) const;
  const std::vector<MapBlock>& blocks() const { return blocks_; }

 private:
  std::vector<MapBlock> blocks_;
};

struct RipOptions {
  std::string source;
  std::string output;
  std::string map;           // "" = OUTPUT.map
  unsigned retries = 1;      // extra tries of each bad 2048-byte block
  std::string command_line;  // for the map's comment
  // Set (from a signal handler) to stop: the map is saved and rip() returns.
  const std::atomic<bool>* stop = nullptr;
  // `done` of `total` bytes settled (read or given up), `bad` of them bad.
  std::function<void(uint64_t done, uint64_t total, uint64_t bad)> progress;
};

struct RipResult {
  uint64_t size = 0;        // bytes of the image (as far as the sessions reach)
  uint64_t bad_bytes = 0;   // zero-filled, '-' in the map
  uint64_t read_bytes = 0;  // bytes read from the source this run
  bool stopped = false;     // `stop` was set before the end; '?' areas remain
  std::string map;          // the map's path
};

// Copies options.source into options.output, resuming from the map when it exists (its size
// then says how far to read). Throws imagecore::Error when the source cannot be opened or its
// session table read (no map yet), or the output or map cannot be written.
RipResult rip(const RipOptions& options);

}  // namespace burner
