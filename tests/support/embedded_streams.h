#pragma once

// The StreamsConfig of an in-process test application on the embedded broker.
#include <string>

#include "topology/runtime/streams_config.h"

namespace cm::testing {

inline topology::StreamsConfig EmbeddedStreamsConfig(const std::string& app_id,
                                                     const std::string& bootstrap,
                                                     const std::string& state_dir) {
  topology::StreamsConfig config;
  config.application_id = app_id;
  config.instance_id = "it";
  config.bootstrap_servers = bootstrap;
  config.state_dir = state_dir;
  config.broker_filters_aborted = false;  // the embedded broker does not filter aborted records
  return config;
}

}  // namespace cm::testing
