# Switchboard: a small static image that runs as a non-root user.
#   docker build -t switchboard .
#   docker run -p 8080:8080 switchboard
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/switchboard ./cmd/switchboard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchboard /switchboard
USER nonroot:nonroot
EXPOSE 8080
ENV PORT=8080 LOG_FORMAT=json
ENTRYPOINT ["/switchboard"]
