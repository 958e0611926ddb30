/**
 * The warm-up job of a projection declared with `warmUp` (laws H and I, invariant 7): a Step
 * Functions state machine that
 *
 * 1. records the subscription point: its execution's start time (the projection's queue is
 *    subscribed when its stack deploys, and the state machine is created after the subscription,
 *    so any execution starts after it);
 * 2. invokes the replayer (shared/handlers/replayer.ts) chunk after chunk, passing each chunk's
 *    cursor to the next, until it answers `done`: the archive has passed the subscription point
 *    and every archived event up to there is applied;
 * 3. attaches the consumer: enables its queue mapping, created disabled, with the SDK
 *    integration `lambda:updateEventSourceMapping`. The queue's buffer then drains; the overlap
 *    with the replay is absorbed by the projection's idempotency (invariant 3).
 *
 * Why Step Functions (docs/add-a-projection.md): a replay outlives one Lambda invocation's 15
 * minutes, so something must carry its cursor between chunks and retry a failed one; a state
 * machine does that with no code, shows every chunk's progress in its history, and can be
 * redriven from the failed chunk. Nothing here is a function invoking a function (law C): the
 * orchestrator is not a node of the system.
 */
import { CfnOutput, Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import * as logs from "aws-cdk-lib/aws-logs";
import * as sfn from "aws-cdk-lib/aws-stepfunctions";
import * as tasks from "aws-cdk-lib/aws-stepfunctions-tasks";
import { Construct, type IDependable } from "constructs";
import type { CanonFunction } from "./canon-function.ts";
import { nagResource } from "./nag.ts";

export interface WarmUpProps {
  /** The replayer function (role `replayer`, `job` source). */
  readonly replayer: CanonFunction;
  /** The projection's consumer, whose queue mapping starts disabled. */
  readonly consumer: CanonFunction;
  /** The state machine's name, unique in the account and region. */
  readonly stateMachineName: string;
  /** What must exist before an execution may start: the queue's subscription to its bus's topic. */
  readonly after?: readonly IDependable[];
  /**
   * The longest a warm-up may take. The queue keeps a buffered message 14 days: past that, the
   * oldest would be lost, so the default stays well below.
   * @default 7 days
   */
  readonly timeout?: Duration;
  /** Pause between chunks when the last one applied nothing (waiting for the archiver). @default 15 s */
  readonly idleWait?: Duration;
}

export class WarmUp extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: WarmUpProps) {
    super(scope, id);
    const mapping = props.consumer.queueMapping;
    if (mapping === undefined || props.consumer.planned.startsDetached !== true) {
      throw new Error(`${props.consumer.planned.id} is not a detached queue consumer: nothing to attach`);
    }

    const subscribe = new sfn.Pass(this, "Record the subscription point", {
      comment: "The queue is subscribed (and buffers) since the stack was deployed, before this execution started.",
      parameters: { "subscribedAt.$": "$$.Execution.StartTime" },
    });
    const start = new sfn.Pass(this, "No chunk replayed yet", {
      result: sfn.Result.fromObject({ done: false, cursor: null, events: 0 }),
      resultPath: "$.chunk",
    });
    const replay = new tasks.LambdaInvoke(this, "Replay a chunk", {
      comment: "Applies whole archive objects for about 10 minutes, then answers { done, cursor, events }.",
      lambdaFunction: props.replayer.function,
      payload: sfn.TaskInput.fromObject({ "subscribedAt.$": "$.subscribedAt", "cursor.$": "$.chunk.cursor" }),
      payloadResponseOnly: true,
      resultPath: "$.chunk",
      retryOnServiceExceptions: true,
      taskTimeout: sfn.Timeout.duration(Duration.minutes(16)),
    });
    // A chunk that failed (a throttled table, an S3 hiccup) or timed out (the Lambda killed at its
    // limit) is retried from its cursor, the last durable point: the projection is idempotent. A
    // failure that persists fails the execution; fix, then redrive it.
    replay.addRetry({
      errors: [sfn.Errors.TASKS_FAILED, sfn.Errors.TIMEOUT],
      interval: Duration.seconds(10),
      maxAttempts: 3,
      backoffRate: 3,
    });
    const idle = new sfn.Wait(this, "Wait for the archiver", {
      comment: "The last chunk found nothing new: the archive has not reached the subscription point yet.",
      time: sfn.WaitTime.duration(props.idleWait ?? Duration.seconds(15)),
    });
    const attach = new tasks.CallAwsService(this, "Attach the consumer", {
      comment: "Enables the queue mapping: the buffered messages drain into the projection.",
      service: "lambda",
      action: "updateEventSourceMapping",
      parameters: { UUID: mapping.id, Enabled: true },
      iamAction: "lambda:UpdateEventSourceMapping",
      iamResources: [mapping.arn],
      resultSelector: { "uuid.$": "$.UUID", "state.$": "$.State" },
      resultPath: "$.attached",
    });
    const done = new sfn.Succeed(this, "Warm");

    const definition = subscribe
      .next(start)
      .next(replay)
      .next(
        new sfn.Choice(this, "Passed the subscription point?")
          .when(sfn.Condition.booleanEquals("$.chunk.done", true), attach.next(done))
          .when(sfn.Condition.numberGreaterThan("$.chunk.events", 0), replay)
          .otherwise(idle.next(replay)),
      );

    const logGroup = new logs.LogGroup(this, "Logs", {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, "StateMachine", {
      stateMachineName: props.stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      timeout: props.timeout ?? Duration.days(7),
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      comment: `Warms ${props.consumer.planned.id} up from the archive, then attaches it to its queue (laws H, I)`,
    });
    for (const dependency of props.after ?? []) this.stateMachine.node.addDependency(dependency);

    const invoke = `${props.replayer.function.functionArn}:*`;
    Validations.of(this.stateMachine).acknowledge({
      id: `AwsSolutions-IAM5[${nagResource(this, invoke)}]`,
      reason:
        "Step Functions' Lambda task grants the function and its versions: the permission is restricted to " +
        "the replayer, never another function.",
    });
    Validations.of(this.stateMachine).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "Delivering execution logs (logs:*LogDelivery, DescribeLogGroups, …) and X-Ray traces take no " +
        "resource-level permission.",
    });

    new CfnOutput(this, "StateMachineArn", {
      value: this.stateMachine.stateMachineArn,
      description: `aws stepfunctions start-execution --state-machine-arn <this>: warm ${props.consumer.planned.id} up`,
    });
  }
}

export { warmUpName } from "../shared/aws/deployed-names.ts";
