#pragma once

#include <initializer_list>
#include <string>
#include <vector>

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
  // The record cache keeps what commits write, not only what reads fetched: for stores whose
  // processor reads a key back soon after writing it (a webhook delivery, read at each step of
  // its attempt). Off by default: keys written once and read rarely (usage aggregates) would
  // push the ones read every commit out of the cache.
  bool cache_writes = false;

  // Logged stores of one type, one per name: how applications declare most of theirs.
  static std::vector<StoreSpec> Logged(StoreType type, std::initializer_list<const char*> names) {
    std::vector<StoreSpec> specs;
    for (const char* name : names) {
      StoreSpec spec;
      spec.name = name;
      spec.type = type;
      specs.push_back(std::move(spec));
    }
    return specs;
  }
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
