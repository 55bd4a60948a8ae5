export { defaultServiceName } from './service-name.ts';
