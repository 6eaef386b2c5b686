#pragma once

#include <cstdint>
#include <string_view>

namespace cm::topology {

// Kafka's default partitioner: murmur2 of the key bytes, made positive, modulo the partition
// count, so Java clients, librdkafka (partitioner=murmur2_random) and cmstream agree.
uint32_t Murmur2(std::string_view data);
int32_t PartitionForKey(std::string_view key, int32_t partition_count);

}  // namespace cm::topology
