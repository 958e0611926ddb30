/**
 * The app's alarm topic: the one SNS topic every alarm of every stack notifies, when it fires
 * and when it returns to OK, so an alarm reaches someone by default. With the context
 * `canon:alarmEmail` (addresses, comma-separated) the stack subscribes those addresses; other
 * subscribers (a pager, a chat channel) subscribe to the topic themselves, by its ARN (output
 * `TopicArn`).
 *
 * The topic is encrypted with its own customer managed key (CloudWatch cannot publish to a topic
 * under the AWS managed SNS key, whose policy it is not in), TLS only, and only CloudWatch
 * alarms of this app, in this account, may publish to it. What SNS cannot deliver to an e-mail
 * subscription lands in `{prefix}-alarms-undelivered`, which alarms in turn.
 *
 * The other stacks name the topic by its ARN, built from its name (`alarmTopicName`), never by a
 * reference to this stack, nor even a deploy-order dependency on it (`cdk destroy` of a stack
 * takes its dependents with it): CloudWatch accepts an alarm whose topic does not exist yet, and
 * notifies it from the moment it does.
 */
import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as sns from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import * as sqs from "aws-cdk-lib/aws-sqs";
import type { Construct, IConstruct } from "constructs";
import type { MonitoringOptions } from "./monitoring.ts";
import { alarmKeyAlias, alarmTopicName } from "./names.ts";

export const alarmEmailContextKey = "canon:alarmEmail";

export interface AlarmsStackProps extends StackProps, MonitoringOptions {
  /** The app's prefix: the topic is `{prefix}-alarms`, and only alarms named `{prefix}-…` may publish to it. */
  readonly prefix: string;
  /** E-mail addresses subscribed to the topic (each confirms by the link SNS sends). @default none */
  readonly emails?: readonly string[];
}

export class AlarmsStack extends Stack {
  readonly topic: sns.Topic;
  readonly key: kms.Key;
  /** With e-mail subscriptions: where SNS puts what it could not deliver to them. */
  readonly undelivered?: sqs.Queue;

  constructor(scope: Construct, id: string, props: AlarmsStackProps) {
    super(scope, id, props);
    const { prefix } = props;
    this.key = new kms.Key(this, "Key", {
      alias: alarmKeyAlias(prefix),
      description: `Canon ${prefix}: encrypts the alarm topic and its undelivered notifications`,
      enableKeyRotation: true,
      // Notifications live seconds in the topic: the key goes with the stack, after the shortest wait.
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    // CloudWatch encrypts what it publishes with the topic's key (the AWS managed key's policy
    // leaves it out). It can publish to this topic only (topic policy below), so the key grants
    // it nothing beyond these notifications.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "CloudWatchAlarmsPublish",
        principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
      }),
    );

    this.topic = new sns.Topic(this, "Topic", {
      topicName: alarmTopicName(prefix),
      displayName: `Canon ${prefix} alarms`,
      masterKey: this.key,
      enforceSSL: true,
    });
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "CloudWatchAlarmsOfThisApp",
        principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["sns:Publish"],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID },
          ArnLike: {
            "aws:SourceArn": `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:${prefix}-*`,
          },
        },
      }),
    );
    new CfnOutput(this, "TopicArn", {
      value: this.topic.topicArn,
      description: "Every alarm of the app notifies this topic: subscribe a pager or a chat channel to it",
    });

    const emails = props.emails ?? [];
    if (emails.length === 0) return;
    const undelivered = new sqs.Queue(this, "UndeliveredQueue", {
      queueName: `${alarmTopicName(prefix)}-undelivered`,
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(undelivered).acknowledge({
      id: "AwsSolutions-SQS3",
      reason:
        "This queue is a dead-letter queue: the e-mail subscriptions' redrive policy names it, which cdk-nag " +
        "does not look at (it only recognizes a queue's own redrive policy).",
    });
    // SNS encrypts what it moves into the queue with the queue's key, for this topic only (named
    // by its ARN as text: a reference would make the key and the topic depend on each other).
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "SnsUndeliveredNotifications",
        principals: [new iam.ServicePrincipal("sns.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey"],
        resources: ["*"],
        conditions: {
          ArnEquals: { "aws:SourceArn": this.formatArn({ service: "sns", resource: alarmTopicName(prefix) }) },
        },
      }),
    );
    for (const email of emails) {
      this.topic.addSubscription(new EmailSubscription(email, { deadLetterQueue: undelivered }));
    }
    const alarm = new cloudwatch.Alarm(this, "UndeliveredAlarm", {
      alarmName: `${alarmTopicName(prefix)}-undelivered`,
      alarmDescription:
        "alarm notifications SNS could not deliver to an e-mail subscription (see the queue's messages)",
      metric: undelivered.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: "Maximum",
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    // Other subscribers of the topic (and `alarmTopicArn`'s) still hear of it.
    const topics: sns.ITopic[] = [this.topic];
    if (props.alarmTopicArn !== undefined) topics.push(sns.Topic.fromTopicArn(this, "AlarmTopic", props.alarmTopicArn));
    for (const topic of topics) {
      alarm.addAlarmAction(new SnsAction(topic));
      alarm.addOkAction(new SnsAction(topic));
    }
    this.undelivered = undelivered;
  }
}

/** `canon:alarmEmail`: e-mail addresses, comma-separated (in cdk.json also a list). */
export function alarmEmailsFromContext(scope: IConstruct): string[] | undefined {
  const value: unknown = scope.node.tryGetContext(alarmEmailContextKey);
  if (value === undefined || value === null) return undefined;
  const items = typeof value === "string" ? value.split(",") : Array.isArray(value) ? value : undefined;
  if (items === undefined || items.some((item) => typeof item !== "string")) {
    throw new Error(`${alarmEmailContextKey} must be e-mail addresses, comma-separated, not ${JSON.stringify(value)}`);
  }
  const emails = (items as string[]).map((item) => item.trim()).filter((item) => item !== "");
  for (const email of emails) {
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
      throw new Error(`${alarmEmailContextKey}: "${email}" is not an e-mail address`);
    }
  }
  return emails.length > 0 ? emails : undefined;
}
