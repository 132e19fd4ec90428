"""Validates OCSF 1.5.0 events (one JSON object per line) against the
published schema, offline: `ocsf-json-schema` bundles the schema's 1.5.0
export and turns a class into a JSON Schema that `jsonschema` checks.
Prints one line per class seen and every error; exits 1 on any error.

    python3 ocsf_validate.py events.jsonl
"""
import collections
import json
import sys
from functools import lru_cache

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

VERSION = "1.5.0"
OCSF = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=VERSION))


@lru_cache(maxsize=None)
def validator_for(class_uid, profiles=()):
    name = OCSF.lookup_class_name_from_uid(class_uid)
    schema = OCSF.get_class_schema(class_name=name, profiles=list(profiles))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors_of(event):
    profiles = tuple(sorted(event.get("metadata", {}).get("profiles", [])))
    validator = validator_for(event["class_uid"], profiles)
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(event)
    ]
    # What the JSON Schema does not say.
    if event.get("type_uid") != event.get("class_uid", 0) * 100 + event.get("activity_id", -1):
        errors.append("type_uid is not class_uid * 100 + activity_id")
    if event.get("metadata", {}).get("version") != VERSION:
        errors.append(f"metadata.version is not {VERSION}")
    return errors


def main(path):
    classes = collections.Counter()
    bad = 0
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            event = json.loads(line)
            classes[event["class_uid"]] += 1
            for error in errors_of(event):
                bad += 1
                print(f"line {number} (class {event['class_uid']}): {error}")
    for class_uid, count in sorted(classes.items()):
        print(f"class {class_uid}: {count} events valid against OCSF {VERSION}" if not bad else f"class {class_uid}: {count} events")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
