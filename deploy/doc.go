// Package deploy holds the deployment files that are not Go (the nginx load
// balancer of docker-compose.yml) and the tests that check them against
// real processes.
package deploy
