# Every target delegates to run.sh, so `make X` and `./run.sh X` never drift apart.
.PHONY: run test test-deploy test-config run-file drain lint docs docs-serve sample bench recipe-elections recipe-s3-mirror recipe-s3-mirror-source recipe-voters clean install-service
ARGS ?=

run:
	./run.sh run $(ARGS)
test:
	./run.sh test $(ARGS)
test-deploy:  # as root: the image, the unit and the proxy run for real (minutes)
	./run.sh test-deploy $(ARGS)
test-config:  # the pipeline tests beside the config; ARGS=--log-format json for JSON
	./run.sh test-config $(ARGS)
run-file:
	./run.sh run-file "$(FILE)"
drain:
	./run.sh drain $(ARGS)
lint:
	./run.sh lint
docs:  # the manual, built strictly into build/site/
	./run.sh docs
docs-serve:  # the manual with live reload on http://127.0.0.1:8001 (ARGS go to mkdocs serve)
	./run.sh docs-serve $(ARGS)
sample:
	./run.sh sample $(N)
bench:
	./run.sh bench $(ARGS)
recipe-elections recipe-s3-mirror recipe-s3-mirror-source recipe-voters:  # the manual's "Recipes"; ARGS go to the generator
	./run.sh recipe $(@:recipe-%=%) $(ARGS)
clean:
	./run.sh clean
install-service:  # as root; ARGS=--dry-run shows what it would do
	deploy/install.sh $(ARGS)
