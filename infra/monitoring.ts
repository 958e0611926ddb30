/**
 * The alarms and the dashboard of one stack: what its operator must see before a customer
 * does. Every alarm watches an AWS metric or a metric filter on a log line the framework
 * already writes, so nothing here needs code in the functions:
 *
 * - dead letters: a message in any dead-letter (or stream-failure) queue;
 * - projection lag: the age of the oldest message a projection has not applied yet;
 * - stream consumers: the iterator age of the relay and of the archiver against the
 *   stream's retention, so it fires long before a record could expire unread (invariant 4);
 * - conflict rate: commits that lost arbitration, as a share of the commits on the stream.
 */
import { Duration, Stack } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import type * as kinesis from "aws-cdk-lib/aws-kinesis";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as sns from "aws-cdk-lib/aws-sns";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { alarmTopicName } from "./names.ts";

export interface MonitoringProps {
  /** The dashboard's name, unique in the account: dashboards are global, so it holds the region. */
  readonly dashboardName: string;
  /** Prefixes every alarm name (alarm names are unique in the account and region). */
  readonly alarmPrefix: string;
  /** Namespace of the metrics this stack derives from logs. */
  readonly metricNamespace: string;
  /** Where alarms (and their return to OK) are sent. @default none: the console and the dashboard show them */
  readonly alarmTopics?: readonly sns.ITopic[];
}

export interface StreamConsumerOptions {
  /** The retention of the stream the function reads. */
  readonly retention: Duration;
  /** @default a quarter of the retention */
  readonly threshold?: Duration;
}

export class Monitoring extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: cloudwatch.Alarm[] = [];
  private readonly props: MonitoringProps;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.props = props;
    this.dashboard = new cloudwatch.Dashboard(this, "Dashboard", {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.hours(3),
    });
  }

  /** Alarms on the first message in a dead-letter queue: something needs a human. */
  addDeadLetterQueue(label: string, queue: sqs.IQueue): cloudwatch.Alarm {
    return this.alarm(`${label}-dead-letters`, {
      metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: "Maximum" }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      alarmDescription: `${label}: messages in the dead-letter queue (each one failed every retry, or could not be delivered)`,
    });
  }

  /**
   * Alarms when a projection's (or reactor's) queue holds a message older than the threshold:
   * its view lags the bus. A projection warming up from the archive (law I) fires it on
   * purpose: its queue buffers until the replay has caught up.
   */
  addQueueLag(label: string, queue: sqs.IQueue, threshold = Duration.minutes(5)): cloudwatch.Alarm {
    return this.alarm(`${label}-lag`, {
      metric: queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: "Maximum" }),
      threshold: threshold.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      alarmDescription: `${label}: the oldest unprocessed message is older than ${threshold.toHumanString()}`,
    });
  }

  /** Alarms on a stream consumer's iterator age, long before records expire unread. */
  addStreamConsumer(label: string, fn: lambda.IFunction, options: StreamConsumerOptions): cloudwatch.Alarm {
    const retentionMs = options.retention.toMilliseconds();
    const threshold = options.threshold ?? Duration.millis(retentionMs / 4);
    return this.alarm(`${label}-iterator-age`, {
      metric: fn.metric("IteratorAge", { period: Duration.minutes(1), statistic: "Maximum" }),
      threshold: threshold.toMilliseconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      alarmDescription:
        `${label}: iterator age above ${threshold.toHumanString()}; the stream keeps records ` +
        `${options.retention.toHumanString()}, after which unread records are lost`,
      annotations: [{ value: retentionMs, label: "stream retention", color: cloudwatch.Color.RED }],
    });
  }

  /**
   * Counts the commits that lost arbitration (the relay's "commit lost arbitration" log line)
   * and alarms when they exceed a share of the commits on the stream.
   */
  addConflictRate(bus: string, relayLogs: logs.ILogGroup, stream: kinesis.IStream, percent = 10): cloudwatch.Alarm {
    const filter = new logs.MetricFilter(this, "ConflictsFilter", {
      logGroup: relayLogs,
      filterPattern: logs.FilterPattern.stringValue("$.message", "=", "commit lost arbitration"),
      metricNamespace: this.props.metricNamespace,
      metricName: `${bus}-arbitration-conflicts`,
      metricValue: "1",
      defaultValue: 0,
      unit: cloudwatch.Unit.COUNT,
    });
    const period = Duration.minutes(5);
    const rate = new cloudwatch.MathExpression({
      expression: "IF(commits > 0, 100 * conflicts / commits, 0)",
      usingMetrics: {
        conflicts: filter.metric({ statistic: "Sum", period }),
        commits: stream.metricIncomingRecords({ statistic: "Sum", period }),
      },
      label: `${bus} conflict rate (%)`,
      period,
    });
    return this.alarm("conflict-rate", {
      metric: rate,
      threshold: percent,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      alarmDescription: `${bus}: more than ${percent}% of commits lost arbitration (hot aggregates, or retries racing)`,
    });
  }

  /**
   * Alarms when a telemetry bus's delivery stream falls behind: its oldest record not yet in a
   * Parquet file is older than the threshold (Firehose cannot write the bucket, convert by the
   * Glue table, or keep up). Telemetry, not the log of record: the stream still holds the records.
   */
  addDeliveryFreshness(label: string, deliveryStreamName: string, threshold = Duration.minutes(15)): cloudwatch.Alarm {
    return this.alarm(`${label}-freshness`, {
      metric: new cloudwatch.Metric({
        namespace: "AWS/Firehose",
        metricName: "DeliveryToS3.DataFreshness",
        dimensionsMap: { DeliveryStreamName: deliveryStreamName },
        statistic: "Maximum",
        period: Duration.minutes(5),
      }),
      threshold: threshold.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 2,
      alarmDescription: `${label}: records wait more than ${threshold.toHumanString()} to be written to Parquet files`,
    });
  }

  /** Alarms when the API answers 5xx (its function failed or timed out) more than `count` times in 5 minutes. */
  addServerErrors(label: string, metric: cloudwatch.IMetric, count = 5): cloudwatch.Alarm {
    return this.alarm(`${label}-5xx`, {
      metric,
      threshold: count,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      alarmDescription: `${label}: ${count} or more 5xx answers in 5 minutes`,
    });
  }

  /** Invocations, errors, throttles and duration of the stack's functions, on the dashboard. */
  addFunctions(functions: ReadonlyMap<string, lambda.IFunction>): void {
    const each = (metric: string, statistic = "Sum") =>
      [...functions].map(([label, fn]) => fn.metric(metric, { statistic, label, period: Duration.minutes(5) }));
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: "Invocations", left: each("Invocations"), width: 6 }),
      new cloudwatch.GraphWidget({ title: "Errors", left: each("Errors"), width: 6 }),
      new cloudwatch.GraphWidget({ title: "Throttles", left: each("Throttles"), width: 6 }),
      new cloudwatch.GraphWidget({ title: "Duration p99 (ms)", left: each("Duration", "p99"), width: 6 }),
    );
  }

  private alarm(
    name: string,
    options: cloudwatch.CreateAlarmOptions & {
      readonly metric: cloudwatch.IMetric;
      readonly annotations?: cloudwatch.HorizontalAnnotation[];
    },
  ): cloudwatch.Alarm {
    const { metric, annotations, ...alarmOptions } = options;
    const alarm = new cloudwatch.Alarm(this, `${name}Alarm`, {
      ...alarmOptions,
      metric,
      alarmName: `${this.props.alarmPrefix}-${name}`,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const topic of this.props.alarmTopics ?? []) {
      alarm.addAlarmAction(new SnsAction(topic));
      alarm.addOkAction(new SnsAction(topic));
    }
    this.alarms.push(alarm);
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: name,
        left: [metric],
        leftAnnotations: [alarm.toAnnotation(), ...(annotations ?? [])],
        width: 12,
        height: 5,
      }),
    );
    return alarm;
  }
}

/** What every Canon stack takes to wire its alarms. */
export interface MonitoringOptions {
  /**
   * ARN of an SNS topic of yours (outside the app) that alarms notify as well as the app's own
   * alarm topic, e.g. from `cdk deploy -c canon:alarmTopicArn=arn:aws:sns:…`.
   * @default the app's alarm topic only
   */
  readonly alarmTopicArn?: string;
}

/**
 * The topics a stack's alarms notify: the app's alarm topic (infra/alarms-stack.ts), by its
 * name in this stack's account and region, so no stack holds a reference to the alarms stack;
 * and `alarmTopicArn` if given.
 */
export function alarmTopicsFor(scope: Construct, prefix: string, options: MonitoringOptions): sns.ITopic[] {
  const arn = Stack.of(scope).formatArn({ service: "sns", resource: alarmTopicName(prefix) });
  const topics = [sns.Topic.fromTopicArn(scope, "AppAlarmTopic", arn)];
  if (options.alarmTopicArn !== undefined)
    topics.push(sns.Topic.fromTopicArn(scope, "AlarmTopic", options.alarmTopicArn));
  return topics;
}

/**
 * A stack's monitoring: alarms named `{prefix}-{name}-…` (alarm names are per region), a
 * dashboard named `{prefix}-{region}-{name}` (dashboard names are per account: without the
 * region, a second region's deploy would take the first one's dashboard), metrics under
 * `Canon/{prefix}`, every alarm notifying the app's alarm topic.
 */
export function monitoringFor(scope: Construct, prefix: string, name: string, options: MonitoringOptions): Monitoring {
  return new Monitoring(scope, "Monitoring", {
    dashboardName: `${prefix}-${Stack.of(scope).region}-${name}`,
    alarmPrefix: `${prefix}-${name}`,
    metricNamespace: `Canon/${prefix}`,
    alarmTopics: alarmTopicsFor(scope, prefix, options),
  });
}
