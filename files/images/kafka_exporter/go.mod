// Wrapper module: builds github.com/danielqsj/kafka_exporter v1.9.0 from the Go module proxy on the Docker
// host (roles/exporters/tasks/go_build.yml), with this file's pins and no replace directives of upstream.
module prism.local/build/kafka_exporter

go 1.24

require github.com/danielqsj/kafka_exporter v1.9.0
