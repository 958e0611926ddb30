/**
 * Personal data marks, read from the contracts: a field option
 * `[(canon.privacy.v1.personal).subject_field = "account_id"]` (events/proto/canon/privacy/v1).
 * The command handler seals what they mark; the contracts gate checks them (`checkMarks`).
 */
import { type DescField, type DescFile, type DescMessage, getOption, hasOption, ScalarType } from "@bufbuild/protobuf";
import { personal } from "../../events/gen/canon/privacy/v1/privacy_pb.ts";
import type { FieldKind } from "./sealed.ts";

/** A marked field of a message: its JSON name, its kind, and the JSON name of its subject field. */
export interface PersonalField {
  readonly field: string;
  readonly kind: FieldKind;
  readonly subjectField: string;
}

const planned = new WeakMap<DescMessage, readonly PersonalField[]>();

/**
 * A message's marked fields (top-level), cached per message. The contracts gate checks the marks
 * (`checkMarks`); here a mark without its subject field still fails, without the gate's words.
 */
export function personalFieldsOf(schema: DescMessage): readonly PersonalField[] {
  let fields = planned.get(schema);
  if (fields === undefined) {
    fields = schema.fields.filter(isMarked).map((field) => {
      const subject = subjectOf(schema, field);
      if (subject === undefined)
        throw new Error(`${schema.typeName}.${field.name}: bad personal mark (check:contracts)`);
      return {
        field: field.jsonName,
        kind: field.scalar === ScalarType.BYTES ? "b" : "s",
        subjectField: subject.jsonName,
      };
    });
    planned.set(schema, fields);
  }
  return fields;
}

const isMarked = (field: DescField) => hasOption(field, personal);

const subjectOf = (schema: DescMessage, field: DescField) =>
  schema.fields.find((f) => f.name === getOption(field, personal).subjectField);

/** What is wrong with a message's marks, in the contract's words (empty when they are right). */
export function markProblems(schema: DescMessage): string[] {
  const problems: string[] = [];
  for (const field of schema.fields.filter(isMarked)) {
    const where = `${schema.typeName}.${field.name}`;
    const scalar = field.fieldKind === "scalar" ? field.scalar : undefined;
    if (scalar !== ScalarType.STRING && scalar !== ScalarType.BYTES)
      problems.push(`${where} is marked personal but is not a string or bytes field (only those can be encrypted)`);
    const named = getOption(field, personal).subjectField;
    const subject = subjectOf(schema, field);
    if (named === "") problems.push(`${where} is marked personal but names no subject_field`);
    else if (subject === undefined)
      problems.push(`${where} names subject_field "${named}", which is not a field of ${schema.typeName}`);
    else if (subject.fieldKind !== "scalar" || subject.scalar !== ScalarType.STRING)
      problems.push(`${where} names subject_field "${named}", which is not a string field`);
    else if (isMarked(subject)) problems.push(`${where} names subject_field "${named}", which is itself personal`);
  }
  return problems;
}

/** Every mark problem of the files' messages (nested ones included: a mark there is never honoured). */
export function checkMarks(files: Iterable<DescFile>): string[] {
  const problems: string[] = [];
  const visit = (message: DescMessage, nested: boolean) => {
    problems.push(...markProblems(message));
    if (nested && message.fields.some(isMarked))
      problems.push(`${message.typeName} is a nested message: marks are honoured on events and commands only`);
    for (const inner of message.nestedMessages) visit(inner, true);
  };
  for (const file of files) for (const message of file.messages) visit(message, false);
  return problems;
}
