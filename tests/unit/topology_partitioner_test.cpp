#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "topology/kafka/kafka_client.h"
#include "topology/kafka/partitioner.h"

namespace cm::topology {
namespace {

// A producer with no brokers: enough for librdkafka's partitioner functions, which need a real
// topic handle.
class LibrdkafkaPartitioner {
 public:
  LibrdkafkaPartitioner() {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    if (auto s = SetAll(conf, {{"log_level", "0"}}); !s.ok()) {
      rd_kafka_conf_destroy(conf);
      error_ = s.ToString();
      return;
    }
    auto rk = CreateKafkaHandle(RD_KAFKA_PRODUCER, conf);
    if (!rk.ok()) {
      error_ = rk.status().ToString();
      return;
    }
    rk_ = std::move(rk).value();
    rkt_ = rd_kafka_topic_new(rk_.get(), "partitioner-test", nullptr);
    if (rkt_ == nullptr) error_ = rd_kafka_err2str(rd_kafka_last_error());
  }
  ~LibrdkafkaPartitioner() {
    if (rkt_ != nullptr) rd_kafka_topic_destroy(rkt_);
  }
  bool ok() const { return rkt_ != nullptr; }
  const std::string& error() const { return error_; }
  int32_t Partition(const std::string& key, int32_t partition_count) const {
    return rd_kafka_msg_partitioner_murmur2(rkt_, key.data(), key.size(), partition_count, nullptr,
                                            nullptr);
  }

 private:
  KafkaHandle rk_;
  rd_kafka_topic_t* rkt_ = nullptr;
  std::string error_;
};

TEST(TopologyPartitionerTest, AgreesWithLibrdkafkaMurmur2) {
  LibrdkafkaPartitioner rdkafka;
  ASSERT_TRUE(rdkafka.ok()) << rdkafka.error();

  std::mt19937 rng(0x5eed);
  std::uniform_int_distribution<int> length(0, 80);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<std::string> keys = {"",
                                   "a",
                                   "ab",
                                   "abc",
                                   "abcd",
                                   "abcde",
                                   "org-42",
                                   std::string("\0\0\0", 3),
                                   std::string(1, '\xff')};
  for (int i = 0; i < 4000; ++i) {
    std::string key(static_cast<size_t>(length(rng)), '\0');
    for (auto& c : key) c = static_cast<char>(byte(rng));  // any byte, including NUL and >= 0x80
    keys.push_back(std::move(key));
  }
  // 0x7fffffff leaves nearly the whole positive hash visible.
  const std::vector<int32_t> counts = {1, 2, 3, 6, 7, 12, 16, 50, 64, 100, 1000, 0x7fffffff};
  int mismatches = 0;
  for (const auto& key : keys) {
    for (int32_t n : counts) {
      int32_t ours = PartitionForKey(key, n);
      int32_t theirs = rdkafka.Partition(key, n);
      if (ours != theirs && ++mismatches <= 10) {
        ADD_FAILURE() << "key of " << key.size() << " bytes, " << n << " partitions: ours " << ours
                      << ", librdkafka " << theirs;
      }
      ASSERT_GE(ours, 0);
      ASSERT_LT(ours, n);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(TopologyPartitionerTest, Murmur2MatchesJavaUtilsTestVectors) {
  // org.apache.kafka.common.utils.UtilsTest#testMurmur2: Java's int result of Utils.murmur2.
  struct Case {
    std::string key;
    int32_t java;
  };
  const std::vector<Case> cases = {
      {"21", -973932308},
      {"foobar", -790332482},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
      {"abc", 479470107},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(static_cast<int32_t>(Murmur2(c.key)), c.java) << c.key;
  }
}

TEST(TopologyPartitionerTest, PartitionIsJavaToPositiveModulo) {
  // Java: Utils.toPositive(Utils.murmur2(key)) % numPartitions, where toPositive masks the
  // sign bit (not Math.abs).
  for (const std::string key : {"21", "foobar", "a-little-bit-longer-string", "abc"}) {
    uint32_t h = Murmur2(key);
    for (int32_t n : {1, 3, 10, 97}) {
      EXPECT_EQ(PartitionForKey(key, n),
                static_cast<int32_t>((h & 0x7fffffffU) % static_cast<uint32_t>(n)))
          << key << " / " << n;
    }
  }
  // "21" hashes negative in Java: a plain int modulo would give a negative partition.
  EXPECT_EQ(PartitionForKey("21", 10),
            static_cast<int32_t>((static_cast<uint32_t>(-973932308) & 0x7fffffffU) % 10U));
  EXPECT_EQ(PartitionForKey("anything", 1), 0);
}

TEST(TopologyPartitionerTest, SpreadsKeysOverPartitions) {
  std::vector<int> hits(12, 0);
  for (int i = 0; i < 12'000; ++i)
    ++hits[static_cast<size_t>(PartitionForKey("org-" + std::to_string(i), 12))];
  for (size_t p = 0; p < hits.size(); ++p) {
    EXPECT_GT(hits[p], 800) << "partition " << p;
    EXPECT_LT(hits[p], 1200) << "partition " << p;
  }
}

}  // namespace
}  // namespace cm::topology
