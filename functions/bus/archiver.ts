/** Lambda entry: the bus archiver (stream → S3, the permanent log). See shared/handlers/archiver.ts. */
export { archiverHandler as handler } from "../../shared/handlers/archiver.ts";
