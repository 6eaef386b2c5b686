#include "topology/kafka/embedded_broker.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <utility>

#include "topology/kafka/kafka_client.h"

namespace cm::topology {

using state::Result;
using state::Status;

namespace {

// librdkafka's mock broker writes each response with its own send() and leaves Nagle on, so a
// response queued behind an unacknowledged one waits for the client's delayed ACK (40 ms):
// several produce round trips per commit took 40+ ms. Its listening sockets are found by port
// among this process's descriptors; accepted connections inherit TCP_NODELAY from them.
void DisableNagle(const std::string& bootstraps) {
  std::set<int> ports;
  std::stringstream list(bootstraps);
  for (std::string server; std::getline(list, server, ',');) {
    ports.insert(std::atoi(server.substr(server.rfind(':') + 1).c_str()));
  }
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (dirent* e = readdir(dir)) {
    int fd = std::atoi(e->d_name);
    struct stat st {};
    if (fd <= 2 || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        addr.sin_family != AF_INET)
      continue;
    if (ports.count(ntohs(addr.sin_port)) == 0) continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  closedir(dir);
}

}  // namespace

Result<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::Start(int broker_count) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The handle only hosts the cluster; it never connects anywhere.
  if (auto s = SetAll(conf, {{"log_level", "3"}}); !s.ok()) {
    rd_kafka_conf_destroy(conf);
    return s;
  }
  auto handle = CreateKafkaHandle(RD_KAFKA_PRODUCER, conf);
  if (!handle.ok()) return handle.status();
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(handle->get(), broker_count);
  if (cluster == nullptr) return Status::Unavailable("cannot start the embedded broker");
  std::unique_ptr<EmbeddedBroker> broker(new EmbeddedBroker());
  broker->handle_ = std::move(handle).value();
  broker->cluster_ = cluster;
  broker->bootstrap_servers_ = rd_kafka_mock_cluster_bootstraps(cluster);
  DisableNagle(broker->bootstrap_servers_);
  return broker;
}

EmbeddedBroker::~EmbeddedBroker() {
  // The cluster first: it runs on its host handle, which the member then destroys.
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
}

Status EmbeddedBroker::SetAvailable(bool available) {
  rd_kafka_resp_err_t err = available ? rd_kafka_mock_broker_set_up(cluster_, -1)
                                      : rd_kafka_mock_broker_set_down(cluster_, -1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Unavailable(rd_kafka_err2str(err));
  return Status::OK();
}

Status EmbeddedBroker::CreateTopic(const std::string& name, int partitions) {
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return Status::OK();
    default:
      return Status::InvalidArgument("cannot create topic " + name + ": " + rd_kafka_err2str(err));
  }
}

}  // namespace cm::topology
