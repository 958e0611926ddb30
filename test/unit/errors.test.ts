/** Canon's errors are told apart by their code (shared/errors.ts), not by class name. */
import { describe, expect, it } from "vitest";
import { AwsTargetError, isAwsTargetError } from "../../bin/commands/aws-target.ts";
import { ReplayStateMissingError } from "../../shared/archive/replay-checkpoint.ts";
import { ConsoleUnreachableError } from "../../shared/console/client.ts";
import { ConsoleRequestError, isConsoleRequestError } from "../../shared/console/source.ts";
import { UnsupportedRuleError } from "../../shared/domain/rules.ts";
import { type CanonErrorCode, isCanonError } from "../../shared/errors.ts";
import { ShapeError } from "../../shared/events/check.ts";
import { ClaimCheckError } from "../../shared/events/claim-check.ts";
import { MalformedMessageError } from "../../shared/events/envelope.ts";
import { InvalidEventError } from "../../shared/events/schemas.ts";
import { AppendRefusedError } from "../../shared/handlers/commit-append.ts";
import { ProjectionOpError } from "../../shared/local-cloud/projection-ops.ts";
import { PersonalDataError } from "../../shared/privacy/sealed.ts";
import { IncompleteError } from "../../shared/retry.ts";
import { RedriveRefusedError } from "../../shared/runner/dead-letters.ts";
import { NotRunningError } from "../../shared/runner/endpoints.ts";

const errors: [CanonErrorCode, Error][] = [
  ["append_refused", new AppendRefusedError("x")],
  ["aws_target", new AwsTargetError("x", 2)],
  ["claim_check", new ClaimCheckError("x")],
  ["console_request", new ConsoleRequestError("x", 404)],
  ["console_unreachable", new ConsoleUnreachableError("x")],
  ["incomplete", new IncompleteError("x")],
  ["invalid_event", new InvalidEventError("x")],
  ["malformed_message", new MalformedMessageError("x")],
  ["not_running", new NotRunningError("x")],
  ["personal_data", new PersonalDataError("x")],
  ["projection_op", new ProjectionOpError("x")],
  ["redrive_refused", new RedriveRefusedError("x")],
  ["replay_state_missing", new ReplayStateMissingError("x")],
  ["shape", new ShapeError([], "x")],
  ["unsupported_rule", new UnsupportedRuleError("x")],
];

describe("isCanonError", () => {
  it("knows each error by its own code and by no other", () => {
    for (const [code, error] of errors) {
      for (const [other] of errors)
        expect(isCanonError(error, other), `${error.name} as ${other}`).toBe(other === code);
    }
  });

  it("goes by the code, not the class or the name", () => {
    const renamed = new ClaimCheckError("x");
    renamed.name = "SomethingElse";
    expect(isCanonError(renamed, "claim_check")).toBe(true);
    const lookalike = new Error("x");
    lookalike.name = "ClaimCheckError";
    expect(isCanonError(lookalike, "claim_check")).toBe(false);
    // An error from another copy of the class (another bundle, a worker) carries the same code.
    expect(isCanonError(Object.assign(new Error("x"), { code: "claim_check" }), "claim_check")).toBe(true);
    expect(isCanonError({ code: "claim_check" }, "claim_check")).toBe(false);
  });

  it("gives the errors that carry more than a message a guard of their own, by the code", () => {
    const target = Object.assign(new Error("x"), { code: "aws_target", exitCode: 1 });
    expect(isAwsTargetError(target)).toBe(true);
    expect(isAwsTargetError(new ConsoleRequestError("x", 404))).toBe(false);
    expect(isConsoleRequestError(new ConsoleRequestError("x", 404))).toBe(true);
    expect(isConsoleRequestError(new AwsTargetError("x", 2))).toBe(false);
  });
});
