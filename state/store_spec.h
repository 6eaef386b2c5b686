#pragma once

#include <string>

#include "state/window_store.h"

namespace cm::state {

enum class StoreType { kKeyValue, kWindow, kTimer };

const char* StoreTypeName(StoreType type);

// What a topology declares about one of its stores.
struct StoreSpec {
  std::string name;
  StoreType type = StoreType::kKeyValue;
  WindowSpec window;   // only for kWindow
  bool logged = true;  // backed by a changelog topic
};

inline const char* StoreTypeName(StoreType type) {
  switch (type) {
    case StoreType::kKeyValue:
      return "key-value";
    case StoreType::kWindow:
      return "window";
    case StoreType::kTimer:
      return "timer";
  }
  return "unknown";
}

}  // namespace cm::state
