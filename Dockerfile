# One image, both binaries: /elasti-scaler and /elasti-extproc.
#   docker build -t ghcr.io/elasti-mesh/elasti:v0.1.0 .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY proto/ proto/
COPY istio/ istio/
COPY extproc/ extproc/
COPY scaler/ scaler/
COPY cmd/ cmd/
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
	go build -trimpath -ldflags "-s -w" -o /out/elasti-scaler ./cmd/elasti-scaler && \
	CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
	go build -trimpath -ldflags "-s -w" -o /out/elasti-extproc ./cmd/elasti-extproc

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/elasti-scaler /out/elasti-extproc /
USER 65532:65532
ENTRYPOINT ["/elasti-scaler"]
