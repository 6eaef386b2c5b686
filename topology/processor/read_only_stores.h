#pragma once

#include <string_view>

#include "state/key_value_store.h"
#include "state/task_state.h"
#include "state/window_store.h"

namespace cm::topology {

// The committed stores of one task, as interactive queries see them: read-only, and safe to
// use from an HTTP thread while the task runs (they do not see writes buffered for the next
// commit). Valid only inside the callback that receives it.
class ReadOnlyStores {
 public:
  explicit ReadOnlyStores(state::TaskState& state) : state_(state) {}
  // Null when the task has no key-value (window) store of that name.
  state::ReadOnlyKeyValueStore* KeyValue(std::string_view name) const {
    return state_.committed_key_value_store(name);
  }
  state::ReadOnlyWindowStore* Window(std::string_view name) const {
    return state_.committed_window_store(name);
  }

 private:
  state::TaskState& state_;
};

}  // namespace cm::topology
