#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace cm::topology {

// Names the calling thread as `top -H`, `perf` and gdb show it ("cm-stream-0"). Linux keeps
// 15 bytes; longer names are cut rather than refused.
inline void NameCurrentThread(std::string_view name) {
  std::string cut(name.substr(0, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace cm::topology
