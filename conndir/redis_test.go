package conndir

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/testredis"
)

// redisCluster returns a factory of nodes, each with its own client, on
// keys under a prefix of its own per test.
func redisCluster(newClient func() redis.UniversalClient) func(t *testing.T) newNodeFunc {
	return func(t *testing.T) newNodeFunc {
		prefix := "test:" + t.Name() + ":"
		return func(t *testing.T, opts Options) Directory {
			c := newClient()
			t.Cleanup(func() { _ = c.Close() })
			d, err := NewRedis(c, RedisOptions{Options: opts, Prefix: prefix, BatchSize: 7})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
}

func TestRedisConformance(t *testing.T) {
	srv := testredis.Start(t)
	runConformance(t, redisCluster(func() redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: srv.Addr()})
	}))
}

func TestRedisClusterConformance(t *testing.T) {
	cluster := testredis.StartCluster(t, 3)
	runConformance(t, redisCluster(func() redis.UniversalClient {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	}))
}
