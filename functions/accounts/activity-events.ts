/** The event types the `accounts/activity` view counts (kept apart so the declaration imports no runtime). */
export const activityEventTypes = [
  "FundsDeposited",
  "FundsWithdrawn",
  "FundsCreditedForTransfer",
  "FundsDebitedForTransfer",
  "FundsRefundedForTransfer",
];
