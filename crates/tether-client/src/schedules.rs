//! The schedule methods of [`Client`]: `/v1/schedules`.

use reqwest::Method;
use serde_json::Value;

use crate::types::{NewSchedule, ScheduleInfo, SchedulesList};
use crate::{encode_path_segment, send, Client, ClientError};

impl Client {
    /// Create a durable cron schedule: each tick starts one run `sched:{id}:{tick_ms}` of its
    /// workflow. Repeating the same create answers with the schedule (safe to retry); the
    /// same id with other settings is an [`ClientError::Api`] error with code
    /// `schedule_exists`; a bad expression or zone: `invalid_schedule`; an unknown workflow:
    /// `workflow_not_found`.
    pub async fn create_schedule(
        &self,
        schedule: &NewSchedule,
    ) -> Result<ScheduleInfo, ClientError> {
        send(self.request(Method::POST, "/v1/schedules").json(schedule)).await
    }

    /// Every schedule, by id.
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleInfo>, ClientError> {
        let list: SchedulesList = send(self.request(Method::GET, "/v1/schedules")).await?;
        Ok(list.schedules)
    }

    /// One schedule (`schedule_not_found` if there is none).
    pub async fn get_schedule(&self, id: &str) -> Result<ScheduleInfo, ClientError> {
        send(self.request(Method::GET, &path(id, ""))).await
    }

    /// Delete a schedule; the runs it started stay.
    pub async fn delete_schedule(&self, id: &str) -> Result<(), ClientError> {
        let _: Value = send(self.request(Method::DELETE, &path(id, ""))).await?;
        Ok(())
    }

    /// Pause a schedule: no tick fires until it is resumed.
    pub async fn pause_schedule(&self, id: &str) -> Result<ScheduleInfo, ClientError> {
        send(self.request(Method::POST, &path(id, "/pause"))).await
    }

    /// Resume a paused schedule from its next tick after now (the paused ticks never fire).
    pub async fn resume_schedule(&self, id: &str) -> Result<ScheduleInfo, ClientError> {
        send(self.request(Method::POST, &path(id, "/resume"))).await
    }
}

fn path(id: &str, rest: &str) -> String {
    format!("/v1/schedules/{}{rest}", encode_path_segment(id))
}
