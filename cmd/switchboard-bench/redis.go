package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/harness"
)

// redisStats are the figures read from INFO.
type redisStats struct {
	CPU        float64 // used_cpu_sys + used_cpu_user, seconds
	UsedMemory int64   // used_memory, bytes
	Version    string
}

// readRedisStats runs INFO on c.
func readRedisStats(ctx context.Context, c *redis.Client) (redisStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "server", "cpu", "memory").Result()
	if err != nil {
		return redisStats{}, err
	}
	return parseRedisStats(info)
}

// parseRedisStats reads the figures from the text of INFO.
func parseRedisStats(info string) (redisStats, error) {
	f := harness.ParseInfo(info)
	sys, err1 := strconv.ParseFloat(f["used_cpu_sys"], 64)
	user, err2 := strconv.ParseFloat(f["used_cpu_user"], 64)
	mem, err3 := strconv.ParseInt(f["used_memory"], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return redisStats{}, fmt.Errorf("unreadable INFO: %w", err)
	}
	return redisStats{CPU: sys + user, UsedMemory: mem, Version: f["redis_version"]}, nil
}
